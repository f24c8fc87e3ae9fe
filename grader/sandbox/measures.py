"""What a worker can be asked to measure about one call, by name (a request's "measure").

    call       the call's return value, as plain data
    record     the aten operations the call dispatched, as a trace the trusted side replays
               and counts itself (see grader/complexity.py), plus nothing the child counted
    cuda_time  median CUDA-event milliseconds of the call (GPU timing cases; informative only,
               since the worker reports them)

Each takes (modules, spec, inputs, options) and returns plain data. A new kind of case that
needs a new measurement adds one function here.
"""
from __future__ import annotations

from grader.complexity import OperationRecorder
from grader.sandbox import invoke, wire


def call(modules: dict, spec: dict, inputs, options: dict):
    return wire.plain(invoke.call(modules, spec, inputs))


def record(modules: dict, spec: dict, inputs, options: dict):
    recorder = OperationRecorder(inputs)
    with recorder:
        output = invoke.call(modules, spec, inputs)
    return wire.plain(recorder.trace(output))


def cuda_time(modules: dict, spec: dict, inputs, options: dict):
    return invoke.cuda_times(modules, spec, inputs, int(options.get("repeats", 20)))


MEASURES = {"call": call, "record": record, "cuda_time": cuda_time}
