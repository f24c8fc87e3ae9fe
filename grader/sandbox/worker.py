"""The worker: the only process that imports and runs student code.

It answers requests from the parent with plain data only. It never receives reference code,
expected values or hidden-case expectations: a request holds a call spec and its inputs.

Two things serve the parent's time keeping. On SIGUSR2 the worker writes every thread's Python
stack to a file the parent reads (`faulthandler`), so that a timeout can name the student's
function that hung. And a request may list functions that hung in earlier cases: entering one
of them raises `NotRunAgain` at once instead of hanging for a second full timeout.
"""
from __future__ import annotations

import faulthandler
import importlib
import io
import os
import signal
import socket
import sys
import time
import traceback

import torch
# torch.autograd.grad imports this (and sympy with it: ~490 modules, 0.4 s, ~35 MB) on its first
# use. Imported here, before the fork server starts, one copy is shared by the grader, every
# worker and every helper (the symbolic answers use sympy too) instead of one private copy each.
import torch.fx.experimental.symbolic_shapes  # noqa: F401

import grader.harness  # noqa: F401  (preloaded: an assignment's harness imports it in the sandbox)
import grader.standins  # noqa: F401  (preloaded: an assignment's stand-in package imports it)
from grader.sandbox import isolation, measures, wire
from grader.seeding import seed_everything

STACK_SIGNAL = signal.SIGUSR2

# Seeding imports modules lazily (numpy's legacy seeding needs `secrets`): import them here, in
# the fork server, where the Python runtime is still readable; a sandbox uid may not read it.
seed_everything(0)


class NotRunAgain(BaseException):
    """A BaseException, so that a student's `except Exception` cannot swallow it."""


def _student_traceback(exc: BaseException, scratch: str) -> str:
    """The student's own frames only: the grader's frames and the case source stay private."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(scratch)]
    lines = traceback.format_list(frames)
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(scratch):
        lines += traceback.format_exception_only(type(exc), exc)
        return "".join(lines).replace(scratch + os.sep, "")
    lines.append(f"{type(exc).__name__}: {exc}\n")
    return "".join(lines).replace(scratch + os.sep, "")


def _error(exc: BaseException, scratch: str) -> dict:
    if isinstance(exc, SystemExit):
        message = f"the submission called sys.exit({exc.code!r})"
    elif isinstance(exc, (wire.UnsupportedValue, NotRunAgain)):
        return {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": ""}}
    else:
        message = f"{type(exc).__name__}: {exc}".replace(scratch + os.sep, "")
    return {"ok": False, "error": {"type": type(exc).__name__, "message": message[:2000],
                                    "traceback": _student_traceback(exc, scratch)[-4000:]}}


def _import(names: list[str], scratch: str, modules: dict) -> dict:
    report = {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
            report[name] = {"ok": True}
        except BaseException as exc:  # SystemExit at import is a verdict, not an exit
            report[name] = _error(exc, scratch)
    return report


def _line_span(code) -> tuple[int, int]:
    lines = [line for _, _, line in code.co_lines() if line is not None] or [code.co_firstlineno]
    return min(lines + [code.co_firstlineno]), max(lines)


class _HungFunctions:
    """A trace hook that stops a call into a function that hung in an earlier case."""

    def __init__(self, hung: list[dict], scratch: str):
        self.hung = [(os.path.join(scratch, h["file"]), h["function"], h["line"], h) for h in hung]
        self.spans: dict = {}

    def __call__(self, frame, event, arg):
        if event != "call":
            return None
        code = frame.f_code
        for filename, function, line, info in self.hung:
            if code.co_name == function and code.co_filename == filename:
                if code not in self.spans:
                    self.spans[code] = _line_span(code)
                first, last = self.spans[code]
                if first <= line <= last:
                    sys.settrace(None)
                    raise NotRunAgain(f"{info['where']} did not finish within {info['seconds']:g} s in the case "
                                      f"{info['case']!r}, so it is not run again")
        return None


def _run(request: dict, modules: dict, scratch: str) -> dict:
    seed_everything(request.get("seed", 0) if type(request.get("seed")) is int else 0)
    hung = request.get("hung") or []
    if hung:
        sys.settrace(_HungFunctions(hung, scratch))
    try:
        value = measures.run(request.get("measure", "call"), modules, request["spec"], request["inputs"],
                             request.get("options") or {})
    finally:
        sys.settrace(None)
    return {"ok": True, "value": value}


def serve(sock: socket.socket, out_fd: int, stack_fd: int, scratch: str, iso: isolation.Isolation) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    faulthandler.register(STACK_SIGNAL, file=stack_fd, all_threads=True, chain=False)
    sys.path.insert(0, scratch)
    # the grader's cached directory listings would let `import reference` find an (empty,
    # unreadable) namespace package where the staff files used to be visible
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    torch.set_num_threads(1)
    modules: dict = {}
    wire.send(sock, {"ready": iso.describe()})
    while True:
        try:
            request = wire.recv(sock, max_bytes=1 << 31)
        except wire.WireError:
            os._exit(0)
        start = time.perf_counter()
        try:
            if request["op"] == "import":
                reply = {"ok": True, "value": _import(request["modules"], scratch, modules)}
            else:
                reply = _run(request, modules, scratch)
        except BaseException as exc:
            reply = _error(exc, scratch)
        reply["wall"] = time.perf_counter() - start
        reply["id"] = request.get("id") if type(request.get("id")) is int else 0
        sys.stdout.flush()
        isolation.reap_descendants(iso)
        try:
            wire.send(sock, reply)
        except wire.UnsupportedValue as exc:
            wire.send(sock, dict(_error(exc, scratch), id=reply["id"]))
