"""One unprivileged uid per grading run, so that concurrent runs never share one.

Reaping by uid (`kill(-1)` as the sandbox uid, the fallback where there is no PID namespace)
kills every process of that uid on the machine; with a shared uid, one run's cleanup killed
another run's worker mid-case. Each run therefore holds an exclusive lock on its uid for as
long as it grades. Locks are `flock`s, released by the kernel if the grader dies.

Taking a uid and giving it back both sweep it (cleanup.sweep_uid): a run killed outright
leaves its uid's processes and files for the next run that takes the uid to remove.
"""
from __future__ import annotations

import fcntl
import os
import stat
import tempfile

from grader.sandbox.cleanup import sweep_uid

BASE_UID = int(os.environ.get("DLGRADE_SANDBOX_UID", "61000"))
POOL_SIZE = 1000


class UidPoolExhausted(RuntimeError):
    pass


def _lock_dir() -> str:
    path = os.environ.get("DLGRADE_LOCK_DIR") or ("/run/dlgrade" if os.access("/run", os.W_OK)
                                                  else os.path.join(tempfile.gettempdir(), f"dlgrade-{os.geteuid()}"))
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    # a directory someone else could write to would let them hold our locks
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(f"refusing the uid lock directory {path}: it must be a directory owned by uid "
                           f"{os.geteuid()} and writable by no one else (set DLGRADE_LOCK_DIR)")
    return path


class SandboxUid:
    """`with SandboxUid.acquire() as uid:` a uid no other run on this machine is using."""

    def __init__(self, uid: int, fd: int):
        self.uid = uid
        self._fd = fd

    @classmethod
    def acquire(cls, base: int = BASE_UID, size: int = POOL_SIZE) -> "SandboxUid":
        directory = _lock_dir()
        for uid in range(base, base + size):
            fd = os.open(os.path.join(directory, f"uid-{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if os.geteuid() == 0:
                sweep_uid(uid)
            return cls(uid, fd)
        raise UidPoolExhausted(f"all {size} sandbox uids from {base} are in use by other grading runs")

    def release(self) -> None:
        if self._fd >= 0:
            if os.geteuid() == 0:
                sweep_uid(self.uid)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> int:
        return self.uid

    def __exit__(self, *exc) -> None:
        self.release()
