"""Each grading run holds a sandbox uid of its own while it grades."""
from __future__ import annotations

import os

import pytest

from grader.sandbox.uids import SandboxUid, UidPoolExhausted


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    path = tmp_path / "locks"
    monkeypatch.setenv("DLGRADE_LOCK_DIR", str(path))
    return path


def test_concurrent_holders_get_distinct_uids_and_release_returns_them(lock_dir):
    first = SandboxUid.acquire(base=70000, size=3)
    second = SandboxUid.acquire(base=70000, size=3)
    assert (first.uid, second.uid) == (70000, 70001)
    first.release()
    with SandboxUid.acquire(base=70000, size=3) as uid:
        assert uid == 70000
    second.release()


def test_exhausted_pool_says_so(lock_dir):
    held = [SandboxUid.acquire(base=70000, size=2) for _ in range(2)]
    with pytest.raises(UidPoolExhausted, match="2 sandbox uids"):
        SandboxUid.acquire(base=70000, size=2)
    for h in held:
        h.release()


def test_lock_dir_writable_by_others_is_refused(lock_dir):
    lock_dir.mkdir(mode=0o777)
    os.chmod(lock_dir, 0o777)
    with pytest.raises(RuntimeError, match="writable by no one else"):
        SandboxUid.acquire(base=70000, size=2)
