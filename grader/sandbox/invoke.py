"""Run one call spec against a module: the same code serves the student's module (in the
child) and the reference or a mutant (in the parent), so both are called identically.

A spec is plain data:
    {"module": "linear_attention", "target": "kernel_attention",
     "args": [{"$input": "Q"}, ..., {"$glue": "elu_plus_one", "module": "glue"}], "kwargs": {...},
     "grad": None | {"wrt": ["Q", "K"], "upstream": "dOut"}}
A `$glue` names a function of one of the assignment's own support modules (its "glue"): a
helper the grader hands to the student's function, the same on both sides.
"""
from __future__ import annotations

import functools

import torch


def describe_target(spec: dict) -> str:
    return f"{spec['module']}.{spec['target']}"


def resolve(module, target: str):
    obj = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _materialize(value, inputs: dict, modules: dict):
    if type(value) is dict and "$input" in value:
        return inputs[value["$input"]]
    if type(value) is dict and "$glue" in value:
        function = resolve(modules[value["module"]], value["$glue"])
        kwargs = {k: _materialize(v, inputs, modules) for k, v in value.get("kwargs", {}).items()}
        return functools.partial(function, **kwargs) if kwargs else function
    if type(value) in (list, tuple):
        return type(value)(_materialize(v, inputs, modules) for v in value)
    return value


def call(modules: dict, spec: dict, inputs: dict):
    """Run the spec once on one input set; returns the raw result (not yet plain data)."""
    fn = resolve(modules[spec["module"]], spec["target"])
    grad = spec.get("grad")
    if grad:
        inputs = dict(inputs)
        for name in grad["wrt"]:
            inputs[name] = inputs[name].detach().clone().requires_grad_(True)
    args = [_materialize(a, inputs, modules) for a in spec.get("args", [])]
    kwargs = {k: _materialize(v, inputs, modules) for k, v in spec.get("kwargs", {}).items()}
    output = fn(modules, *args, **kwargs) if spec.get("with_modules") else fn(*args, **kwargs)
    if not grad:
        return output
    if not isinstance(output, torch.Tensor):
        return {"output": output, "grads": None}
    wrt = [inputs[name] for name in grad["wrt"]]
    grads = torch.autograd.grad(output, wrt, grad_outputs=inputs[grad["upstream"]], allow_unused=True)
    return {"output": output, "grads": {n: g for n, g in zip(grad["wrt"], grads)}}


def cuda_times(modules: dict, spec: dict, inputs_list: list, repeats: int) -> list[float]:
    """Median milliseconds per input set on CUDA: warm-up, CUDA events, median of repeats."""
    times = []
    for inputs in inputs_list:
        inputs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        for _ in range(3):
            call(modules, spec, inputs)
        samples = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call(modules, spec, inputs)
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
        times.append(sorted(samples)[len(samples) // 2])
    return times
