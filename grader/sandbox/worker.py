"""The worker: the only process that imports and runs student code.

It answers requests from the parent with plain data only. It never receives reference code,
expected values or hidden-case expectations: a request holds a call spec and its inputs.
"""
from __future__ import annotations

import importlib
import io
import os
import socket
import sys
import time
import traceback

import torch

from grader.complexity import OperationCounter
from grader.sandbox import invoke, isolation, wire


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
    elif isinstance(exc, wire.UnsupportedValue):
        return {"ok": False, "error": {"type": "UnsupportedValue", "message": str(exc), "traceback": ""}}
    else:
        message = f"{type(exc).__name__}: {exc}"
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


def _run(request: dict, modules: dict) -> dict:
    spec = request["spec"]
    torch.manual_seed(request.get("seed", 0))
    if spec.get("cuda_repeats"):
        return {"ok": True, "value": invoke.cuda_times(modules, spec, request["inputs"], spec["cuda_repeats"])}
    if spec.get("sizes"):
        work, peak, seconds, outputs = [], [], [], []
        for inputs in request["inputs"]:
            with OperationCounter() as counter:
                output, elapsed = invoke.timed_call(modules, spec, inputs)
            work.append(counter.work)
            peak.append(counter.peak_bytes)
            seconds.append(elapsed)
            # returned so the parent can check that the counted run computed the right thing
            outputs.append(wire.plain(output))
        return {"ok": True, "value": {"work": work, "peak_bytes": peak, "seconds": seconds, "outputs": outputs}}
    result, elapsed = invoke.timed_call(modules, spec, request["inputs"])
    return {"ok": True, "value": wire.plain(result), "seconds": elapsed}


def serve(sock: socket.socket, out_fd: int, scratch: str, iso: isolation.Isolation) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    sys.path.insert(0, scratch)
    torch.set_num_threads(1)
    modules: dict = {}
    wire.send(sock, {"ready": iso.describe()})
    while True:
        try:
            request = wire.recv(sock, trusted=True)
        except wire.WireError:
            os._exit(0)
        start = time.perf_counter()
        try:
            if request["op"] == "import":
                reply = {"ok": True, "value": _import(request["modules"], scratch, modules)}
            else:
                reply = _run(request, modules)
        except BaseException as exc:
            reply = _error(exc, scratch)
        reply["wall"] = time.perf_counter() - start
        sys.stdout.flush()
        isolation.reap_descendants(iso)
        wire.send(sock, reply)
