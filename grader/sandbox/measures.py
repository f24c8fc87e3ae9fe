"""What can be measured about one call, by name: the registry both sides of the trust boundary
run through. The worker runs the student's module with the measure a request names; the oracle
(grader/oracle.py) runs the reference's with the same function, so a measure means the same
thing for both.

    call       the call's return value, as plain data
    record     the aten operations the call dispatched, as a trace the trusted side replays
               and counts itself (see grader/complexity.py): nothing the child counted
    cuda_time  median CUDA-event milliseconds of the call on each input set (GPU timing cases;
               informative only when the worker reports them)
    reported   one entry of a file of self-reported values in the submission (CS182's
               autograder.pt), read in the child (grader/sandbox/reported.py); no call is made

A measure is `fn(modules, spec, inputs, options) -> plain data`. A new kind of case that needs
a new measurement registers one function here with `@measure("name")`; `deterministic` says
whether its value depends only on the call and its seed (then the oracle may cache it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from grader.complexity import OperationRecorder
from grader.sandbox import invoke, reported, wire


@dataclass(frozen=True)
class Measure:
    name: str
    run: Callable
    deterministic: bool


MEASURES: dict[str, Measure] = {}


def measure(name: str, deterministic: bool = True):
    def register(fn: Callable) -> Callable:
        MEASURES[name] = Measure(name, fn, deterministic)
        return fn
    return register


@measure("call")
def call(modules: dict, spec: dict, inputs, options: dict):
    return wire.plain(invoke.call(modules, spec, inputs))


@measure("record")
def record(modules: dict, spec: dict, inputs, options: dict):
    recorder = OperationRecorder(inputs)
    with recorder:
        output = invoke.call(modules, spec, inputs)
    return wire.plain(recorder.trace(output))


@measure("cuda_time", deterministic=False)
def cuda_time(modules: dict, spec: dict, inputs, options: dict):
    return invoke.cuda_times(modules, spec, inputs, int(options.get("repeats", 20)))


@measure("reported", deterministic=False)
def reported_entry(modules: dict, spec: dict, inputs, options: dict):
    file, key = str(options["file"]), str(options["key"])
    found = reported.entry(file, key)
    if found.get("found"):
        try:
            found["value"] = wire.plain(found["value"], f"{file}'s {key!r}")
        except wire.UnsupportedValue as exc:
            return {"error": f"{file}: {exc}"}
    return found


def run(name: str, modules: dict, spec: dict, inputs, options: dict | None = None):
    """Run the measure `name`; KeyError names an unknown one."""
    if name not in MEASURES:
        raise KeyError(f"no measure named {name!r}; known: {', '.join(sorted(MEASURES))}")
    return MEASURES[name].run(modules, spec, inputs, options or {})
