"""Deterministic complexity: count the work and memory of the operations a call dispatches.

`OperationCounter` sits at torch's dispatch level, so it sees every aten operation however the
student wrote it (einsum, @, loops, in-place ops). Work is multiply-adds for matrix products
and output elements for everything else; memory is the largest storage any operation
allocates (views share their base's storage and so cost nothing). Fitting log(count) against
log(N) over several N gives a growth exponent that does not depend on the machine's speed.
"""
from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_MATMUL_LIKE = {aten.mm.default, aten.bmm.default, aten.addmm.default, aten.baddbmm.default}


def _matmul_flops(func, args, out) -> int:
    # every matmul-like aten op contracts over the last dim of its first matrix operand
    a = args[1] if func in (aten.addmm.default, aten.baddbmm.default) else args[0]
    return 2 * out.numel() * a.shape[-1]


class OperationCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.work = 0
        self.peak_bytes = 0
        self.operations = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.operations += 1
        if getattr(func, "is_view", False):
            return out
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        for t in outputs:
            if isinstance(t, torch.Tensor):
                self.peak_bytes = max(self.peak_bytes, t.untyped_storage().nbytes())
                self.work += _matmul_flops(func, args, t) if func in _MATMUL_LIKE else t.numel()
        return out


def growth_exponent(sizes: list[int], counts: list[float]) -> float:
    """Least-squares slope of log(count) against log(size)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(c, 1)) for c in counts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
