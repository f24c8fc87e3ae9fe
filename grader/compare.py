"""Compare a student's value with the expected one, explaining any difference.

Tensors must match in exact type, shape and dtype before values are compared; the message
for a value mismatch names the largest error, where it is, and how many entries are off.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# (rtol, atol) per dtype: tight where inputs are float64, as the design asks
DEFAULT_TOLERANCE = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}
# The absolute tolerance also grows with the largest expected magnitude (atol_scale x max|e|):
# a right algorithm that rounds one constant through float32 (torch.sqrt(torch.tensor(d)))
# is off by about 1e-8 of the output's scale, which on near-zero entries of a float64 result
# exceeds any fixed atol; a real mistake is off by far more (tests/engine/test_compare.py and
# the minbert mistakes test measure the margin).
DEFAULT_ATOL_SCALE = {torch.float64: 1e-7}


@dataclass(frozen=True)
class Tolerance:
    rtol: float | None = None
    atol: float | None = None
    atol_scale: float | None = None
    # A course's own symmetric relative error instead of rtol/atol (CS182's notebooks):
    # every entry must have |a - e| / max(1e-8, |a| + |e|) <= relative.
    relative: float | None = None

    def for_dtype(self, dtype: torch.dtype) -> tuple[float, float]:
        rtol, atol = DEFAULT_TOLERANCE.get(dtype, (0.0, 0.0))
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)

    def scale_for_dtype(self, dtype: torch.dtype) -> float:
        """Explicit tolerances (a course's own check) keep their fixed atol unless they scale too."""
        if self.atol_scale is not None:
            return self.atol_scale
        return DEFAULT_ATOL_SCALE.get(dtype, 0.0) if self.atol is None else 0.0


@dataclass
class Comparison:
    ok: bool
    fraction: float          # share of the compared parts that matched (for partial credit)
    message: str


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(map(str, t.shape)) + "]"


def _tensor(expected: torch.Tensor, actual, tol: Tolerance, where: str, reveal: bool, equal_nan: bool) -> Comparison:
    if type(actual) is not torch.Tensor:
        return Comparison(False, 0.0, f"{where}: got {type(actual).__name__}, expected a torch.Tensor {_shape(expected)}")
    if actual.shape != expected.shape:
        return Comparison(False, 0.0, f"{where}: shape {_shape(actual)}, expected {_shape(expected)}")
    if actual.dtype != expected.dtype:
        return Comparison(False, 0.0, f"{where}: dtype {actual.dtype}, expected {expected.dtype} (keep the inputs' dtype)")
    if expected.numel() == 0:
        return Comparison(True, 1.0, f"{where}: ok (empty)")
    if not expected.is_floating_point():
        bad = actual != expected
        n_bad = int(bad.sum())
        return Comparison(n_bad == 0, float(n_bad == 0), f"{where}: {n_bad} of {expected.numel()} entries differ" if n_bad else f"{where}: ok")
    a, e = actual.double(), expected.double()
    if tol.relative is not None:
        return _relative(e, a, tol.relative, where, reveal, equal_nan)
    rtol, atol = tol.for_dtype(expected.dtype)
    scale = tol.scale_for_dtype(expected.dtype)
    atol_text = f"{atol:g}"
    if scale:
        magnitude = float(torch.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0).abs().max())
        if scale * magnitude > atol:
            atol, atol_text = scale * magnitude, f"{scale * magnitude:.2g} ({scale:g} x max|expected|)"
    a, e, bad = _finite(a, e, where, equal_nan)
    if bad:
        return bad
    # NaN in the expected value (a known mistake's 0/0) counts as an infinite error
    error = torch.nan_to_num((a - e).abs(), nan=float("inf"))
    allowed = atol + rtol * e.abs()
    bad = ~(error <= allowed)
    n_bad = int(bad.sum())
    idx = tuple(int(i) for i in torch.unravel_index(torch.argmax(error), error.shape))
    detail = f"largest error {error[idx].item():.3g} at index {idx}"
    if reveal:
        detail += f" (got {a[idx].item():.6g}, expected {e[idx].item():.6g})"
    if n_bad == 0:
        return Comparison(True, 1.0, f"{where}: ok, {detail}")
    return Comparison(False, 0.0, f"{where}: {n_bad} of {e.numel()} entries outside rtol={rtol:g}, atol={atol_text}; {detail}")


def _finite(a: torch.Tensor, e: torch.Tensor, where: str, equal_nan: bool):
    """(a, e, None), or a failed Comparison when the student's value has NaN or infinite entries.
    With `equal_nan` (matching a known mistake), NaN where the mistake also gives NaN (0/0) is a match."""
    if equal_nan:
        both = torch.isnan(a) & torch.isnan(e)
        a, e = torch.where(both, 0.0, a), torch.where(both, 0.0, e)
    if not torch.isfinite(a).all():
        n_nan, n_inf = int(torch.isnan(a).sum()), int(torch.isinf(a).sum())
        first = tuple(torch.nonzero(~torch.isfinite(a))[0].tolist())
        return a, e, Comparison(False, 0.0, f"{where}: {n_nan} NaN and {n_inf} infinite entries (first at index {first})")
    return a, e, None


def _relative(e: torch.Tensor, a: torch.Tensor, limit: float, where: str, reveal: bool, equal_nan: bool) -> Comparison:
    """The course's check: max over entries of |a - e| / max(1e-8, |a| + |e|) <= limit."""
    a, e, bad = _finite(a, e, where, equal_nan)
    if bad:
        return bad
    error = torch.nan_to_num((a - e).abs() / (a.abs() + e.abs()).clamp(min=1e-8), nan=float("inf"))
    idx = tuple(int(i) for i in torch.unravel_index(torch.argmax(error), error.shape))
    detail = f"largest relative error {error[idx].item():.3g} at index {idx}"
    if reveal:
        detail += f" (got {a[idx].item():.6g}, expected {e[idx].item():.6g})"
    n_bad = int((~(error <= limit)).sum())
    if n_bad == 0:
        return Comparison(True, 1.0, f"{where}: ok, {detail} (limit {limit:g})")
    return Comparison(False, 0.0, f"{where}: {n_bad} of {e.numel()} entries have a relative error "
                                  f"|x-y|/(|x|+|y|) above {limit:g}; {detail}")


def compare(expected, actual, tol: Tolerance = Tolerance(), where: str = "output", reveal: bool = True,
            equal_nan: bool = False) -> Comparison:
    """Recursively compare; `reveal=False` (hidden cases) never prints expected values."""
    if type(expected) is torch.Tensor:
        return _tensor(expected, actual, tol, where, reveal, equal_nan)
    if type(expected) in (tuple, list):
        if type(actual) not in (tuple, list) or len(actual) != len(expected):
            got = f"a {type(actual).__name__}" + (f" of length {len(actual)}" if type(actual) in (tuple, list) else "")
            return Comparison(False, 0.0, f"{where}: got {got}, expected a sequence of {len(expected)} values")
        parts = [compare(e, a, tol, f"{where}[{i}]", reveal, equal_nan) for i, (e, a) in enumerate(zip(expected, actual))]
        return _combine(parts)
    if type(expected) is dict:
        if type(actual) is not dict:
            return Comparison(False, 0.0, f"{where}: got {type(actual).__name__}, expected a dict")
        missing = sorted(set(expected) - set(actual))
        if missing:
            return Comparison(False, 0.0, f"{where}: missing keys {missing}")
        parts = [compare(expected[k], actual[k], tol, f"{where}[{k!r}]", reveal, equal_nan) for k in expected]
        return _combine(parts)
    if expected is None:
        ok = actual is None
        return Comparison(ok, float(ok), f"{where}: ok" if ok else f"{where}: expected None, got {type(actual).__name__}")
    if type(expected) is float and type(actual) in (float, int):
        ok = abs(actual - expected) <= (tol.atol or 0) + (tol.rtol or 1e-9) * abs(expected)
        return Comparison(ok, float(ok), f"{where}: {'ok' if ok else f'got {actual!r}'}")
    ok = type(actual) is type(expected) and actual == expected
    return Comparison(ok, float(ok), f"{where}: {'ok' if ok else f'got {actual!r}' + (f', expected {expected!r}' if reveal else '')}")


def _combine(parts: list[Comparison]) -> Comparison:
    fraction = sum(p.fraction for p in parts) / max(len(parts), 1)
    return Comparison(all(p.ok for p in parts), fraction, "\n".join(p.message for p in parts))

