"""What the first batch worker tells the coordinator (grader/batch/describe.py), and the mark a
fully warmed cache leaves so that the next batch does not check every value again."""
from __future__ import annotations

import os

import pytest

from grader import assignment as assignments
from grader.batch import describe as describe_module
from grader.oracle import Oracle, assignment_version


def test_describe_gives_the_version_cases_and_limit():
    assignment = assignments.load("facenet")
    info = describe_module.describe(assignment, warm=False)
    assert info["version"] == assignment_version(assignment)
    assert info["cases"] == [c.name for c in assignment.cases]
    assert info["total_timeout"] == assignment.total_timeout


def test_a_warmed_cache_is_marked_and_not_warmed_again(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the disk cache is kept only as root (the sandbox then runs as another uid)")
    monkeypatch.setenv("DLGRADE_CACHE_DIR", str(tmp_path / "cache"))
    assignment = assignments.load("facenet")
    calls = []
    import grader.warm

    real = grader.warm.warm
    monkeypatch.setattr(grader.warm, "warm", lambda a, progress=None: calls.append(a.name) or real(a, progress))
    describe_module.describe(assignment, warm=True)
    directory = Oracle.of(assignment).directory
    assert calls == ["facenet"] and (directory / describe_module.WARM_MARK).is_file()
    assert any(directory.rglob("*.wire"))
    describe_module.describe(assignments.load("facenet"), warm=True)
    assert calls == ["facenet"]          # the mark says every value is there: not checked again
