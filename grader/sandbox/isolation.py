"""Confinement primitives for the worker, strongest first.

Which of them the host allows differs: these machines and CI run as root and allow
`unshare`; Gradescope's container may refuse namespaces; a student's laptop runs unprivileged.
`enter_namespaces` and `confine` try each mechanism and return what actually took effect,
so the run's log can say how strongly a submission was contained.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import signal
import sys
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 0x40000

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, arg, 0, 0, 0), "prctl")


@dataclass
class Limits:
    """Per-worker resource limits (the parent adds the per-case wall-clock timeout)."""
    memory_mb: int = 512          # heap the worker may add on top of what torch already holds
    cpu_seconds: int = 600        # total CPU time of one worker, a backstop for the wall timeout
    file_mb: int = 64             # largest file the worker may write (student output included)
    processes: int = 64           # only enforced with a dedicated uid (RLIMIT_NPROC is per uid)
    open_files: int = 256


@dataclass
class Isolation:
    """What actually took effect, for the staff log."""
    mechanisms: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def pid_namespace(self) -> bool:
        return "pid-namespace" in self.mechanisms

    def describe(self) -> str:
        text = "isolation: " + (", ".join(self.mechanisms) or "none")
        if self.refused:
            text += "; not available: " + ", ".join(self.refused)
        return text


MS_BIND = 0x1000
MS_REMOUNT = 0x20


def runtime_paths() -> list[str]:
    """Directories the worker's Python must be able to read: the interpreter and sys.path."""
    paths = {sys.base_prefix, sys.base_exec_prefix, sys.prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(os.path.realpath(p) for p in paths)


def _closed_ancestor(path: str) -> str | None:
    """The topmost ancestor of `path` that others may not traverse (e.g. /root, mode 700): the
    one check of whether a stranger (the sandbox uid) can reach a path through its parents."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        try:
            if not os.stat(current).st_mode & 0o001:
                return current
        except OSError:
            return None
    return None


def expose_runtime(isolation: Isolation, staging: str) -> None:
    """Let an unprivileged worker read the Python runtime when it lives in a closed directory.

    On these machines Python sits under /root (mode 700). Inside the private mount namespace,
    the closed ancestor is covered by an open tmpfs and only the runtime directories are
    bind-mounted back, read-only; the rest of that directory stays invisible.
    """
    needed: dict[str, list[str]] = {}
    for path in runtime_paths():
        ancestor = _closed_ancestor(path)
        if ancestor and path != ancestor:
            needed.setdefault(ancestor, []).append(path)
    for ancestor, paths in needed.items():
        # keep only outermost paths: a bind of /a/b already carries /a/b/c
        paths = [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]
        held = []
        for i, path in enumerate(paths):
            stage = os.path.join(staging, f"runtime{i}")
            os.makedirs(stage, exist_ok=True)
            mount(path, stage, None, MS_BIND | MS_REC)
            held.append((stage, path))
        mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for stage, path in held:
            os.makedirs(path, mode=0o755, exist_ok=True)
            mount(stage, path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        isolation.mechanisms.append(f"runtime-exposed-under-{ancestor}")


def enter_namespaces(isolation: Isolation, hidden_paths: list[str], staging: str) -> None:
    """Called in the worker's setup process (trusted) before it forks the worker proper.

    New PID, mount, network, IPC and UTS namespaces: the worker becomes PID 1 of its own
    namespace (killing it kills everything it started, however detached), sees no network,
    and finds staff directories (reference, hidden cases, results) covered by empty mounts.
    """
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if os.geteuid() == 0:
        try:
            unshare(flags)
        except OSError as exc:
            isolation.refused.append(f"namespaces ({exc.strerror})")
            return
    else:
        uid, gid = os.getuid(), os.getgid()
        try:
            unshare(flags | CLONE_NEWUSER)
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {gid} 1")
        except OSError as exc:
            isolation.refused.append(f"user namespace ({exc.strerror})")
            return
        isolation.mechanisms.append("user-namespace")
    isolation.mechanisms += ["pid-namespace", "network-namespace"]
    try:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        for path in hidden_paths:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0")
        isolation.mechanisms.append("staff-files-hidden")
        if os.geteuid() == 0:
            expose_runtime(isolation, staging)
    except OSError as exc:
        isolation.refused.append(f"mount namespace ({exc.strerror})")


SCRATCH_SPACES = ("/tmp", "/var/tmp", "/dev/shm")
SCRATCH_SPACE_SIZE = "64m"


def private_scratch_space(isolation: Isolation, scratch: str) -> None:
    """Give the worker its own empty, size-limited /tmp, /var/tmp and /dev/shm.

    Shared ones would let one submission leave files for a later one to run, and memory in
    /dev/shm outlives every limit. These tmpfs mounts live in the worker's mount namespace and
    vanish with it. The worker's own directory (under /tmp, usually) is bound back at its path.
    """
    if "staff-files-hidden" not in isolation.mechanisms:
        return
    try:
        held = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    except OSError as exc:
        isolation.refused.append(f"private /tmp ({exc.strerror})")
        return
    try:
        covered = []
        for path in SCRATCH_SPACES:
            if os.path.isdir(path) and not os.path.islink(path):
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={SCRATCH_SPACE_SIZE},mode=1777")
                covered.append(path)
        if any(scratch == p or scratch.startswith(p + "/") for p in covered):
            os.makedirs(scratch, mode=0o755, exist_ok=True)
            mount(f"/proc/self/fd/{held}", scratch, None, MS_BIND)
        isolation.mechanisms.append("private-tmp")
    except OSError as exc:
        isolation.refused.append(f"private /tmp ({exc.strerror})")
    finally:
        os.close(held)


def mount_private_proc(isolation: Isolation) -> None:
    """In the new PID namespace, a fresh /proc shows only the sandbox's own processes."""
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError as exc:
        isolation.refused.append(f"private /proc ({exc.strerror})")


def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def vm_data_bytes() -> int:
    """What the process has allocated privately (RLIMIT_DATA counts this)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def confine(isolation: Isolation, limits: Limits, sandbox_uid: int | None, scratch: str) -> None:
    """Called in the worker itself, after the fork, before any student code is imported."""
    os.setsid()  # its own process group and session: the fallback reaper kills by session
    os.chdir(scratch)
    # RLIMIT_DATA (Linux >= 4.7) counts private writable mappings, i.e. what tensors and Python
    # objects allocate; unlike RLIMIT_AS it leaves torch's (or CUDA's) reserved address space alone.
    _limit(resource.RLIMIT_DATA, vm_data_bytes() + limits.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, limits.cpu_seconds)
    _limit(resource.RLIMIT_FSIZE, limits.file_mb * 1024 * 1024)
    _limit(resource.RLIMIT_NOFILE, limits.open_files)
    _limit(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead
    isolation.mechanisms.append("rlimits")
    if sandbox_uid is not None and os.geteuid() == 0:
        _limit(resource.RLIMIT_NPROC, limits.processes)
        os.setgroups([])
        os.setgid(sandbox_uid)
        os.setuid(sandbox_uid)
        isolation.mechanisms.append(f"uid {sandbox_uid}")
    elif "user-namespace" in isolation.mechanisms:
        # A nested user namespace without a mapping leaves us with no capability over the
        # mount namespace above, so the covering mounts can no longer be undone.
        try:
            unshare(CLONE_NEWUSER)
            isolation.mechanisms.append("capabilities-dropped")
        except OSError as exc:
            isolation.refused.append(f"nested user namespace ({exc.strerror})")
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        pass
    # set after the uid change, which clears it
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def reap_descendants(isolation: Isolation) -> None:
    """Kill every process the worker started (it runs between cases, in the worker).

    As PID 1 of its namespace, or as the only process of a dedicated uid, `kill(-1)` reaches
    exactly the worker's own descendants (Linux excludes the caller). Otherwise fall back to
    the worker's session, which a `setsid` grandchild escapes; the staff log says so.
    """
    if os.getpid() == 1 or any(m.startswith("uid ") for m in isolation.mechanisms):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise
    else:
        me, sid = os.getpid(), os.getsid(0)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                try:
                    if os.getsid(int(entry)) == sid:
                        os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def readable_by(uid: int, paths: list[str]) -> list[str]:
    """Which of `paths` a process running as `uid` could read or list: asked from a child that
    takes that uid, so that ACLs, group bits and every parent directory are taken into account."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            found = [p for p in paths if os.path.exists(p) and os.access(p, os.R_OK)]
            os.write(write_fd, "\0".join(found).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return [p for p in data.decode().split("\0") if p]


def fallback_warnings(described: str, hidden: list[str], uid: int | None) -> str:
    """Without a mount namespace only file modes stand between the sandbox uid and the staff
    files, and the Python runtime must be readable to it. Say (in the staff-only isolation
    record) where either is wrong; run_autograder sets both up on Gradescope."""
    if "staff-files-hidden" in described or uid is None or os.geteuid() != 0:
        return ""
    warnings = []
    exposed = readable_by(uid, hidden)
    if exposed:
        warnings.append(f"readable by the sandbox uid: {', '.join(exposed)}")
    closed = _closed_ancestor(os.path.dirname(os.__file__))
    if closed:
        warnings.append(f"the Python runtime is behind {closed}, which the sandbox uid cannot enter: "
                        "modules that student code imports lazily will fail")
    return "".join(f"; WARNING: {w}" for w in warnings)
