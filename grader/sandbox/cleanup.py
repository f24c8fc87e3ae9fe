"""Leave nothing behind: a run's own directory, and whatever its sandbox uid created.

A run directory (`dlgrade-run-*` in the temporary directory) holds a lock file that its
grading run keeps locked (`flock`) while it lives; the kernel drops the lock when the process
dies, however it dies. So at start, a directory whose lock can be taken belongs to a run that
is gone (killed, crashed, power loss) and is removed.

Without a mount namespace the worker writes to the machine's shared /tmp, /var/tmp and
/dev/shm, and can create System V shared memory. Each run's sandbox uid is its own (see
uids.py), so everything that uid owns there was made by this run, or by a dead run that held
the uid before: it is removed when the uid is taken and when it is given back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

RUN_PREFIXES = ("dlgrade-run-", "dlgrade-verify-")
LOCK_NAME = ".dlgrade-lock"
SCRATCH_SPACES = ("/tmp", "/var/tmp", "/dev/shm")
UNLOCKED_GRACE_S = 600        # a run directory without its lock yet is being created (or very old)


class RunDirectory:
    """A private directory for one run (or one verify), removed on close; locked while alive."""

    def __init__(self, prefix: str = "dlgrade-run-"):
        sweep_stale_run_directories()
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._lock = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def for_sandbox(self) -> tuple[Path, Path]:
        """Lay the directory out for a grading run, the one place its file modes are set: the
        sandbox uid may pass through (0711) to its own worker scratch directories, but may not
        list them, nor enter `private/` (worker output and stacks, read by the parent only) or
        `staging/` (where scratch files are written before they are handed over).
        Returns (private, staging)."""
        os.chmod(self.path, 0o711)
        private, staging = self.path / "private", self.path / "staging"
        private.mkdir(mode=0o700)
        staging.mkdir(mode=0o700)
        return private, staging

    def close(self) -> None:
        if self._lock >= 0:
            shutil.rmtree(self.path, ignore_errors=True)
            os.close(self._lock)
            self._lock = -1

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.close()


def _abandoned(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        try:
            return time.time() - path.lstat().st_mtime > UNLOCKED_GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def sweep_stale_run_directories(base: str | None = None) -> list[str]:
    """Remove run directories of dead runs (ours only: owned by this uid, not symlinks)."""
    base = base or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(RUN_PREFIXES):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and _abandoned(Path(entry.path)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _remove(path: str, is_dir: bool) -> None:
    if is_dir:
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def remove_files_of(uid: int, roots=SCRATCH_SPACES) -> int:
    """Delete what `uid` owns under the shared scratch spaces. A uid can only create entries in
    directories it may write: those are all that need to be walked."""
    removed = 0
    pending = [r for r in roots if os.path.isdir(r)]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            if info.st_uid == uid:
                _remove(entry.path, is_dir)
                removed += 1
            elif is_dir and info.st_mode & 0o002:
                pending.append(entry.path)
    return removed


_IPC_RMID = 0
_SYSV = (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl"))


@functools.cache
def _libc() -> ctypes.CDLL:
    """libc, looked up once per process: find_library runs `ldconfig -p` in a subprocess, and the
    uid is cleaned before and after every submission."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def remove_ipc_of(uid: int) -> int:
    """Delete System V shared memory, semaphores and message queues owned by `uid`: they
    outlive their processes and hold memory beyond every limit."""
    libc = _libc()
    removed = 0
    for kind, function in _SYSV:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                header, *rows = f.read().splitlines()
        except OSError:
            continue
        columns = header.split()
        for row in rows:
            values = dict(zip(columns, row.split()))
            if str(uid) in (values.get("uid"), values.get("cuid")):
                ident = int(values.get("shmid") or values.get("semid") or values.get("msqid"))
                call = getattr(libc, function)
                result = call(ident, 0, _IPC_RMID, None) if kind == "sem" else call(ident, _IPC_RMID, None)
                removed += result == 0
    return removed


def kill_processes_of(uid: int) -> None:
    """Kill every process of `uid` (the run's alone): from a child that takes that uid, since
    `kill(-1)` then reaches exactly its processes and cannot touch anyone else's."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def sweep_uid(uid: int) -> None:
    """Everything a sandbox uid left: processes first (they could recreate files), then files."""
    kill_processes_of(uid)
    remove_files_of(uid)
    remove_ipc_of(uid)
