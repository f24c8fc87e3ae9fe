"""Judge untrusted input (a notebook, answers, a prediction file, a recorded trace) in a
killable helper process with a deadline and a memory cap.

The parent is trusted and must always finish writing results.json. Parsing and judging what
a student wrote is our own code, but on hostile data it can recurse without end, allocate
without bound or search for ever (deeply nested JSON, a pathological big-O answer). So it
runs in a child forked from the parent: if that child runs out of time or memory, or dies,
only this one verdict is lost, with a message.

The helper answers with JSON (never pickle): if hostile data ever took control of it, it could
still only send data. It keeps the grader's uid (the Python runtime may be readable only to it;
a worker could not import lazily what the helper needs) and makes itself undumpable.
"""
from __future__ import annotations

import faulthandler
import gc
import json
import os
import resource
import select
import signal
import struct
import time
import traceback
from dataclasses import dataclass

from grader.sandbox import isolation

_LENGTH = struct.Struct(">Q")
MAX_REPLY_BYTES = 16 * 1024 * 1024
PR_SET_DUMPABLE = 4


@dataclass
class BoundedFailure:
    """The helper did not produce a result; `reason` is fit for a student."""
    reason: str


def _confine(memory_mb: int) -> None:
    # the helper speaks only through its pipe: no crash report or warning on the grader's output
    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    limit = isolation.vm_data_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    isolation.prctl(PR_SET_DUMPABLE, 0)
    isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)


def _child(write_fd: int, fn, args, memory_mb: int) -> None:
    # a collection would write to every object's header, copying the parent's pages one by one
    gc.freeze()
    try:
        _confine(memory_mb)
        payload = {"ok": True, "value": fn(*args)}
    except MemoryError:
        payload = {"ok": False, "reason": "it needed more memory than the grader allows"}
    except RecursionError:
        payload = {"ok": False, "reason": "it is nested too deeply to be read"}
    except BaseException as exc:  # our own code failing on odd data: a verdict, not a crash
        payload = {"ok": False, "reason": f"the grader could not judge it ({type(exc).__name__}: {exc})",
                   "staff": traceback.format_exc()[-4000:]}
    try:
        data = json.dumps(payload).encode()
    except (TypeError, ValueError) as exc:
        data = json.dumps({"ok": False, "reason": f"the grader could not judge it ({exc})"}).encode()
    with os.fdopen(write_fd, "wb") as f:
        f.write(_LENGTH.pack(len(data)) + data)


def _read_reply(fd: int, deadline: float) -> bytes | None:
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return data
        data += chunk
        if len(data) > MAX_REPLY_BYTES + _LENGTH.size:
            return data


def run(fn, *args, timeout: float, memory_mb: int = 256, what: str = "it"):
    """`fn(*args)` in a helper; its JSON-able return value, or a BoundedFailure."""
    if timeout <= 0:
        return BoundedFailure(f"there was no time left to judge {what}")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _child(write_fd, fn, args, memory_mb)
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        data = _read_reply(read_fd, time.monotonic() + timeout)
    finally:
        os.close(read_fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
    if data is None:
        return BoundedFailure(f"judging {what} took longer than {timeout:g} s")
    try:
        (length,) = _LENGTH.unpack_from(data)
        reply = json.loads(data[_LENGTH.size:_LENGTH.size + length]) if length <= MAX_REPLY_BYTES else None
    except (struct.error, ValueError):
        reply = None
    if type(reply) is not dict or "ok" not in reply:
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) != signal.SIGKILL
        return BoundedFailure(f"judging {what} failed" + (" (the helper crashed)" if killed else
                                                         " (it needed more memory than the grader allows)"))
    if not reply["ok"]:
        return BoundedFailure(str(reply.get("reason", "judging failed")))
    return reply["value"]
