"""The pool reads a worker's replies raw: two lines that arrive in one read (the ready line and a
result written just after it) are both handled, never one kept in a buffer that select cannot see."""
from __future__ import annotations

import os

from grader.batch.pool import _Worker


def test_two_lines_in_one_read_are_both_returned_and_a_partial_line_waits():
    read_fd, write_fd = os.pipe()
    worker = _Worker(process=None, replies=os.fdopen(read_fd, "r"))
    os.write(write_fd, b'{"ready": 1}\n{"id": 0, "status": "graded"}\n{"id": 1,')
    assert worker.read_lines() == ['{"ready": 1}', '{"id": 0, "status": "graded"}']
    os.write(write_fd, b' "status": "graded"}\n')
    assert worker.read_lines() == ['{"id": 1, "status": "graded"}']
    os.close(write_fd)
    assert worker.read_lines() is None
    worker.replies.close()


def test_the_first_line_is_read_whole_and_what_follows_is_kept():
    read_fd, write_fd = os.pipe()
    worker = _Worker(process=None, replies=os.fdopen(read_fd, "r"))
    os.write(write_fd, b'{"ready": 1, "version": "v"}\n{"id": 0}\n')
    assert worker.first_line() == '{"ready": 1, "version": "v"}'
    assert worker.unread == b'{"id": 0}\n'
    assert worker.take_lines() == ['{"id": 0}']      # the pool handles these before it selects
    os.close(write_fd)
    assert worker.read_lines() is None
    worker.replies.close()
