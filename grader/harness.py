"""The harness kit: what an assignment's call harness needs to run a student's classes.

A harness is a support file of an assignment (say `minbert_harness.py`): functions that build
the student's module the way the course's own code would, load weights the grader chose, call
one method and return plain tensors. It runs on both sides of the trust boundary (the student's
modules in the sandbox, the reference's and each mistake's in the parent), so both are called
exactly alike; every function receives `modules` ({"bert": module, ...}) first. This module is
its generic half, importable in the sandbox (the worker preloads it).

A case calls a harness function with `HarnessCall`:

    HarnessCall("self_attention", ("K", "Q", "V", "mask"), {"config": cfg, "weights": In("W")},
                module="minbert_harness", needs=("bert",), shows="BertSelfAttention.attention(...)")

`needs` names the student's modules the function uses (a file that failed to import fails only
the cases that need it); `shows` is what the feedback says was called.
"""
from __future__ import annotations

import contextlib
import zlib

import torch
import torch.nn.functional as F

from grader.cases import Call


class HarnessError(Exception):
    """The student's module does not fit the starter's API: its message is for the student."""


def HarnessCall(target: str, args: tuple = (), kwargs: dict | None = None, *, module: str, needs: tuple,
                shows: str, grad: tuple | None = None, upstream: str = "dOut") -> Call:
    """A Call of the harness function `module.target(modules, *args, **kwargs)`."""
    return Call(target, tuple(args), dict(kwargs or {}), module=module, with_modules=True, needs=tuple(needs),
                shows=shows, grad=grad, upstream=upstream)


# ---- the student's classes ----------------------------------------------------------------------

def student_class(modules: dict, module: str, name: str):
    """`modules[module].name`, or a HarnessError that says which class is missing."""
    try:
        return getattr(modules[module], name)
    except AttributeError:
        raise HarnessError(f"{module}.py has no class {name}") from None


def load_weights(model: torch.nn.Module, weights: dict, what: str) -> None:
    """Load the grader's weights by the starter's parameter (or buffer) names, in the model's
    dtype; a name or shape the starter does not have is the student's error, said plainly."""
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise HarnessError(f"{what} has no parameter named {', '.join(unknown[:5])}: keep the starter's "
                           "parameter names (the grader loads weights by them)")
    with torch.no_grad():
        for name, value in weights.items():
            if tuple(own[name].shape) != tuple(value.shape):
                raise HarnessError(f"{what}.{name} has shape {list(own[name].shape)}; the starter's is {list(value.shape)}")
            own[name].data = value.clone().to(own[name].dtype)


def build(cls, *args, weights: dict, train: bool, dtype: torch.dtype = torch.float64, what: str = ""):
    """`cls(*args)` in `dtype`, with the grader's weights, in train or eval mode."""
    model = cls(*args).to(dtype)
    load_weights(model, weights, what or cls.__name__)
    model.train(train)
    return model


# ---- deterministic dropout ------------------------------------------------------------------------
# Dropout is checked in train mode with a stand-in whose keep-mask depends only on the tensor's
# shape and the drop probability: the student's code and the reference then drop the same
# entries whichever dropout call (nn.Dropout, F.dropout, torch.dropout) they use and in
# whatever order they make them.

def _keep_mask(shape, p: float, device) -> torch.Tensor:
    seed = zlib.crc32(f"{tuple(shape)}/{p:.6f}".encode())
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(tuple(shape), generator=generator) >= p).to(device)


def _dropout(input, p=0.5, training=True, inplace=False):
    if not training or p == 0.0:
        return input
    scaled = _keep_mask(input.shape, float(p), input.device).to(input.dtype) / (1.0 - p)
    return input.mul_(scaled) if inplace else input * scaled


@contextlib.contextmanager
def deterministic_dropout():
    saved = (F.dropout, torch.dropout)
    F.dropout = torch.dropout = _dropout
    try:
        yield
    finally:
        F.dropout, torch.dropout = saved


def run_deterministic(fn):
    """`fn()` with the dropout stand-in (harmless in eval mode, where dropout does nothing)."""
    with deterministic_dropout():
        return fn()


# ---- setup that a recording does not count ------------------------------------------------------

@contextlib.contextmanager
def unrecorded():
    """Setup that is not the work a complexity case measures (building the student's module and
    loading the grader's weights: nn.Linear's random initialisation could not even be replayed),
    run with no dispatch mode active, so that a recording (measure "record") does not see it.
    What it creates enters the trace as constants, which the replay counts and which may not
    grow with N (grader/complexity.py), so the work measured cannot hide in here."""
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():
        yield
