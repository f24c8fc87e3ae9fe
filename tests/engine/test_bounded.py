"""The bounded helper in which the parent judges what a student wrote: whatever the judging code
does on hostile data (loop, recurse, allocate, crash), the parent gets a value or a
BoundedFailure with a reason, within the deadline."""
from __future__ import annotations

import os
import sys
import time

from grader import bounded


def spin():
    while True:
        pass


def hog():
    chunks = []
    while True:
        chunks.append(bytearray(50 * 1024 * 1024))


def recurse(n=0):
    return recurse(n + 1)


def crash():
    os.abort()


def add(a, b):
    return {"sum": a + b, "items": [a, b]}


def not_json():
    return object()


def test_a_value_comes_back_as_json():
    assert bounded.run(add, 2, 3, timeout=10) == {"sum": 5, "items": [2, 3]}


def test_a_loop_is_stopped_at_the_deadline():
    start = time.monotonic()
    result = bounded.run(spin, timeout=1.0, what="your answer")
    assert isinstance(result, bounded.BoundedFailure) and "longer than 1 s" in result.reason
    assert "your answer" in result.reason
    assert time.monotonic() - start < 5


def test_memory_beyond_the_cap_is_a_verdict():
    result = bounded.run(hog, timeout=30, memory_mb=200)
    assert isinstance(result, bounded.BoundedFailure) and "memory" in result.reason


def test_deep_recursion_is_a_verdict():
    limit = sys.getrecursionlimit()
    result = bounded.run(recurse, timeout=30)
    assert isinstance(result, bounded.BoundedFailure) and "nested too deeply" in result.reason
    assert sys.getrecursionlimit() == limit


def test_a_crash_of_the_helper_is_a_verdict():
    result = bounded.run(crash, timeout=10)
    assert isinstance(result, bounded.BoundedFailure) and "crashed" in result.reason


def test_a_result_that_is_not_json_is_a_verdict():
    result = bounded.run(not_json, timeout=10)
    assert isinstance(result, bounded.BoundedFailure)


def test_no_time_left_means_no_helper():
    result = bounded.run(add, 1, 2, timeout=0)
    assert isinstance(result, bounded.BoundedFailure) and "no time left" in result.reason
