"""The parent's side of the sandbox: a fork server started at a clean point, and workers.

Process tree, per worker:
    parent (grader, trusted) ── zygote (forked before anything secret is loaded)
                                   └─ setup process (enters namespaces, covers staff files)
                                        └─ worker (PID 1 of its namespace, unprivileged, runs student code)
The parent talks to the worker over a socket pair and kills it by PID; the setup process
reports the worker's exit status on a pipe the worker never holds.
"""
from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

from grader.sandbox import cleanup, isolation, wire, worker

_STATUS = struct.Struct(">iq")     # wait status, peak resident size (KiB) from wait4


@dataclass
class WorkerConfig:
    scratch: str                      # the worker's working directory, holding the submission
    output_path: str                  # where the worker's stdout/stderr go (parent reads it)
    stack_path: str = ""              # where the worker writes its Python stacks on request
    staging: str = ""                 # a private directory for the setup process's mount points
    hidden_paths: list[str] = field(default_factory=list)
    limits: isolation.Limits = field(default_factory=isolation.Limits)
    sandbox_uid: int | None = None    # drop to this uid when running as root
    namespaces: bool = True
    max_reply_bytes: int = wire.MAX_FRAME_BYTES


class WorkerTimeout(Exception):
    """No reply in time; `stack` is the worker's Python stack when it was stopped (if it gave one)."""

    def __init__(self, message: str, stack: str = ""):
        super().__init__(message)
        self.stack = stack


class WorkerDied(Exception):
    """The worker is gone; the message says how (exit code, signal, garbage on the wire)."""


class ReplyRefused(WorkerDied):
    """The worker sent a frame that breaks the wire format (a hostile or broken child)."""


def _close_fds_except(keep: set[int]) -> None:
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _setup_process(config: WorkerConfig, cmd_fd: int, status_fd: int, out_fd: int, stack_fd: int) -> None:
    """Runs in the zygote's child; never returns."""
    try:
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        iso = isolation.Isolation()
        if config.namespaces:
            isolation.enter_namespaces(iso, config.hidden_paths, config.staging)
            isolation.private_scratch_space(iso, config.scratch)
        else:
            iso.refused.append("namespaces (disabled by configuration)")
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _close_fds_except({cmd_fd, out_fd, stack_fd, go_r})
            if iso.pid_namespace:
                isolation.mount_private_proc(iso)
            isolation.confine(iso, config.limits, config.sandbox_uid, config.scratch)
            os.read(go_r, 1)  # wait until the parent knows our pid
            os.close(go_r)
            worker.serve(socket.socket(fileno=cmd_fd), out_fd, stack_fd, config.scratch, iso)
            os._exit(0)
        os.close(go_r)
        sock = socket.socket(fileno=cmd_fd)
        wire.send(sock, {"pid": pid})
        sock.close()
        os.write(go_w, b"g")
        os.close(go_w)
        _, status, usage = os.wait4(pid, 0)
        os.write(status_fd, _STATUS.pack(status, usage.ru_maxrss))
    finally:
        os._exit(0)


def process_title(parent_pid: int) -> str:
    """What the zygote, setup processes and workers show as their command line: not the
    grader's own (it names the results path), but enough for staff to find them."""
    return f"dlgrade-sandbox {parent_pid}"


def _scrub_command_line(title: str) -> None:
    """Replace the grader's argv in this process, both Python's copy and the memory that
    /proc/self/cmdline reads, so that no worker forked from here can see it."""
    sys.argv[:] = [title]
    if hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = [title]
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])   # arg_start, arg_end (stat fields 48, 49)
    except (OSError, IndexError, ValueError):
        return
    raw = title.encode()[: end - start - 1]
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, raw, len(raw))


def _zygote(sock: socket.socket, parent_pid: int) -> None:
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    _scrub_command_line(process_title(parent_pid))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except OSError:
            break
        if not message:
            break
        config = pickle.loads(message)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _setup_process(config, *fds)
        for fd in fds:
            os.close(fd)
        sock.sendall(struct.pack(">q", pid))
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"killed by signal {name}"
    return f"exited with code {os.WEXITSTATUS(status)}"


class Worker:
    def __init__(self, sock, status_fd, pid, config, ready):
        self.sock = sock
        self.status_fd = status_fd
        self.pid = pid
        try:
            self.pidfd = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None
        self.config = config
        self.isolation = ready
        self._output_offset = 0
        self._sequence = 0
        self.alive = True
        self.peak_rss_kb: int | None = None    # measured by its parent (wait4) once it has ended

    def request(self, message: dict, timeout: float):
        """Send one request; return the decoded reply or raise WorkerTimeout / WorkerDied.

        Requests are numbered and the worker echoes the number. Student code can write frames of
        its own on the socket: a reply to an earlier request (the worker's late answer after such
        a frame was taken for it) is skipped, never taken as the answer to a later one."""
        deadline = time.monotonic() + timeout
        self._sequence += 1
        try:
            wire.send(self.sock, dict(message, id=self._sequence))
            while True:
                reply = wire.recv(self.sock, deadline=deadline, max_bytes=self.config.max_reply_bytes)
                if type(reply) is not dict or type(reply.get("ok")) is not bool or type(reply.get("id")) is not int:
                    self.kill()
                    raise ReplyRefused("a reply that is not a grader message")
                if reply["id"] == self._sequence:
                    return reply
                if reply["id"] > self._sequence:
                    self.kill()
                    raise ReplyRefused("a reply to a request that was never sent")
        except wire.WireTimeout:
            stack = self._stack()
            self.kill()
            raise WorkerTimeout(f"no answer within {timeout:g} s", stack) from None
        except wire.WireRefused as exc:
            self.kill()
            raise ReplyRefused(str(exc)) from None
        except (wire.WireError, OSError) as exc:
            status = self.kill()
            reason = status or f"sent an unreadable reply ({exc})"
            raise WorkerDied(reason) from None

    def _stack(self, wait: float = 0.5, limit: int = 65536) -> str:
        """Ask the worker for its Python stacks (faulthandler, see worker.py) before killing it."""
        if not self.config.stack_path or self.pidfd is None:
            return ""
        try:
            start = os.path.getsize(self.config.stack_path)
            signal.pidfd_send_signal(self.pidfd, worker.STACK_SIGNAL)
        except OSError:
            return ""
        deadline = time.monotonic() + wait
        size = start
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = os.path.getsize(self.config.stack_path)
            if now > start and now == size:     # written and no longer growing
                break
            size = now
        try:
            with open(self.config.stack_path, "rb") as f:
                f.seek(start)
                return f.read(limit).decode("utf-8", "replace")
        except OSError:
            return ""

    def student_output(self, limit: int = 16384) -> str:
        """Output the worker printed since the last call (capped; never parsed)."""
        try:
            with open(self.config.output_path, "rb") as f:
                f.seek(self._output_offset)
                data = f.read(limit + 1)
                self._output_offset = f.seek(0, os.SEEK_END)
        except OSError:
            return ""
        text = data[:limit].decode("utf-8", "replace")
        return text + ("\n[... output truncated]" if len(data) > limit else "")

    def kill(self) -> str | None:
        """Kill the worker and everything it started; return how it ended, if known."""
        if not self.alive:
            return None
        self.alive = False
        try:
            # through the pidfd: a bare PID may already belong to another run's process
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                os.killpg(self.pid, signal.SIGKILL)   # the group is only ours while the worker lives
            else:
                os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self.config.sandbox_uid is not None and "pid-namespace" not in self.isolation:
            cleanup.kill_processes_of(self.config.sandbox_uid)
        self.sock.close()
        status, self.peak_rss_kb = _read_status(self.status_fd, timeout=5.0)
        os.close(self.status_fd)
        return status

    def close(self) -> None:
        self.kill()


def _read_status(fd: int, timeout: float) -> tuple[str | None, int | None]:
    """(how the worker ended, its peak resident size in KiB), or Nones if not told in time."""
    import select
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return None, None
    data = os.read(fd, _STATUS.size)
    if len(data) != _STATUS.size:
        return None, None
    status, peak = _STATUS.unpack(data)
    return describe_status(status), peak


class Sandbox:
    """Start with `Sandbox.start()` before loading anything secret; then `spawn` workers."""

    def __init__(self, sock: socket.socket, pid: int):
        self._sock = sock
        self._pid = pid

    @classmethod
    def start(cls) -> "Sandbox":
        parent_end, child_end = socket.socketpair()
        # Move every object alive now (torch included) out of the collector's reach: a collection
        # in a forked process would otherwise write to each object's header and turn the shared
        # copy-on-write pages into private copies, per worker.
        gc.freeze()
        sys.stdout.flush()
        sys.stderr.flush()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                parent_end.close()
                _close_fds_except({child_end.fileno()})
                _zygote(child_end, parent_pid)
            finally:
                os._exit(0)
        child_end.close()
        return cls(parent_end, pid)

    def spawn(self, config: WorkerConfig, timeout: float = 60.0) -> Worker:
        cmd_parent, cmd_child = socket.socketpair()
        status_r, status_w = os.pipe()
        out_fd = os.open(config.output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stack_fd = os.open(config.stack_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            socket.send_fds(self._sock, [pickle.dumps(config)], [cmd_child.fileno(), status_w, out_fd, stack_fd])
            (setup_pid,) = struct.unpack(">q", self._recv_exact(8))
        finally:
            cmd_child.close()
            os.close(status_w)
            os.close(out_fd)
            os.close(stack_fd)
        deadline = time.monotonic() + timeout
        try:
            hello = wire.recv(cmd_parent, deadline=deadline)
            ready = wire.recv(cmd_parent, deadline=deadline)
        except wire.WireError as exc:
            cmd_parent.close()
            status, _ = _read_status(status_r, timeout=5.0)
            os.close(status_r)
            raise WorkerDied(f"the sandbox did not start ({status or exc})") from None
        return Worker(cmd_parent, status_r, int(hello["pid"]), config, str(ready["ready"]))

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise WorkerDied("the sandbox's fork server has exited")
            data += chunk
        return data

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
