"""Guarded numeric evaluation of parsed answers (mpmath, no ``lambdify``, no ``evalf`` on towers).

``sympy.lambdify`` uses ``exec``; ``expr.subs(...).evalf()`` is safe from code execution but
not from resource exhaustion: substituting integers into ``x^x^x^x^x`` makes sympy compute
``2^(2^65536)`` exactly, and ``evalf`` of ``exp(exp(exp(300)))`` asks mpmath for a number
whose exponent cannot be stored. Both happen in C and cannot be interrupted by a timer.

:func:`evaluate` walks the sympy tree itself with mpmath numbers and refuses (raises
:class:`NumericOverflow`) before any step whose result would exceed ``e^MAX_LOG_MAGNITUDE``
in size, so every operation is cheap. It also evaluates matrix expressions (``MatrixSymbol`` s
bound to mpmath matrices, ``+``, products, transposes, ``Trace`` of 1x1 matrices).
"""
from __future__ import annotations

from typing import Any, Mapping

import mpmath
import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

__all__ = ["NumericError", "NumericOverflow", "NumericUndefined", "NumericUnsupported",
           "evaluate", "MAX_LOG_MAGNITUDE"]

MAX_LOG_MAGNITUDE = 10_000     # |values| up to e^10000
MAX_TRIG_ARGUMENT = 1e30       # beyond this sin/cos carry no information


class NumericError(ArithmeticError):
    """The expression has no usable numeric value at this point."""


class NumericOverflow(NumericError):
    pass


class NumericUndefined(NumericError):
    pass


class NumericUnsupported(NumericError):
    pass


def _is_matrix(value: Any) -> bool:
    return isinstance(value, mpmath.matrix)


def _finite(z) -> Any:
    if _is_matrix(z):
        for i in range(z.rows):
            for j in range(z.cols):
                _finite(z[i, j])
        return z
    if mpmath.isnan(z) or mpmath.isinf(z):
        raise NumericUndefined("not a finite number")
    return z


def _log_abs(z) -> Any:
    if z == 0:
        return -mpmath.inf
    return mpmath.log(abs(z))


def _pow(base, exponent):
    if _is_matrix(base) or _is_matrix(exponent):
        raise NumericUnsupported("powers of matrices")
    if base == 0:
        if mpmath.re(exponent) > 0:
            return mpmath.mpf(0)
        raise NumericUndefined("0 to a non-positive power")
    log_base = mpmath.log(base)              # principal branch, like sympy
    size = mpmath.re(exponent * log_base)
    if size > MAX_LOG_MAGNITUDE or abs(mpmath.im(exponent * log_base)) > MAX_TRIG_ARGUMENT:
        raise NumericOverflow("the value is too large")
    if size < -MAX_LOG_MAGNITUDE:
        return mpmath.mpf(0)
    if isinstance(exponent, mpmath.mpf) and exponent == int(exponent) and abs(exponent) <= 1024:
        return mpmath.power(base, int(exponent))
    return mpmath.power(base, exponent)


def _exp(z):
    if mpmath.re(z) > MAX_LOG_MAGNITUDE or abs(mpmath.im(z)) > MAX_TRIG_ARGUMENT:
        raise NumericOverflow("exp of a too large number")
    if mpmath.re(z) < -MAX_LOG_MAGNITUDE:
        return mpmath.mpf(0)
    return mpmath.exp(z)


def _trig(func, z):
    if abs(mpmath.im(z)) > MAX_LOG_MAGNITUDE:
        raise NumericOverflow("sin/cos of a too large imaginary number")
    if abs(mpmath.re(z)) > MAX_TRIG_ARGUMENT:
        raise NumericUndefined("sin/cos of a too large number")
    return func(z)


def _to_sympy(z) -> sympy.Expr:
    if isinstance(z, mpmath.mpc):
        return sympy.Float(z.real) + sympy.I * sympy.Float(z.imag)
    return sympy.Float(z)


def _from_sympy_number(value: sympy.Expr, dps: int):
    value = value.evalf(dps)
    re, im = value.as_real_imag()
    if not (re.is_Number and im.is_Number):
        raise NumericUnsupported(f"cannot evaluate {value}")
    return mpmath.mpc(mpmath.mpf(re), mpmath.mpf(im)) if im != 0 else mpmath.mpf(re)


class _Evaluator:
    def __init__(self, point: Mapping[Any, Any], dims: Mapping[Any, int]):
        self.point = point
        self.dims = dims

    def size(self, d) -> int:
        value = sympy.sympify(d).xreplace(dict(self.dims))
        if not value.is_Integer:
            raise NumericUnsupported(f"unknown matrix size {d}")
        return int(value)

    def ev(self, e):
        if e in self.point:
            return self.point[e]
        if isinstance(e, MatrixExpr):
            return _finite(self.matrix(e))
        if e.is_Integer:
            return mpmath.mpf(int(e))
        if e.is_Rational:
            return mpmath.mpf(int(e.p)) / int(e.q)
        if e.is_Float:
            return mpmath.mpf(e._mpf_)
        if e is sympy.S.ImaginaryUnit:
            return mpmath.mpc(0, 1)
        if e in (sympy.S.Infinity, sympy.S.NegativeInfinity, sympy.S.ComplexInfinity, sympy.S.NaN):
            raise NumericUndefined(f"{e}")
        if isinstance(e, sympy.NumberSymbol):
            return _from_sympy_number(e, mpmath.mp.dps + 5)
        if e.is_Symbol:
            raise NumericUnsupported(f"no value for {e}")
        if e.is_Add:
            total = mpmath.mpf(0)
            for arg in e.args:
                total += self.ev(arg)
            return _finite(total)
        if e.is_Mul:
            product = mpmath.mpf(1)
            for arg in e.args:
                product *= self.ev(arg)
            return _finite(product)
        if e.is_Pow:
            return _finite(_pow(self.ev(e.args[0]), self.ev(e.args[1])))
        if isinstance(e, sympy.exp):
            return _finite(_exp(self.ev(e.args[0])))
        if isinstance(e, sympy.log):
            z = self.ev(e.args[0])
            if z == 0:
                raise NumericUndefined("log(0)")
            return _finite(mpmath.log(z))
        if isinstance(e, sympy.sin):
            return _finite(_trig(mpmath.sin, self.ev(e.args[0])))
        if isinstance(e, sympy.cos):
            return _finite(_trig(mpmath.cos, self.ev(e.args[0])))
        if isinstance(e, sympy.Trace):
            m = self.ev(e.args[0])
            if not _is_matrix(m):
                return m
            return sum((m[i, i] for i in range(min(m.rows, m.cols))), mpmath.mpf(0))
        if isinstance(e, sympy.Function) and not isinstance(e, sympy.core.function.AppliedUndef):
            # other sympy functions (Abs, sign, ...) that auto-simplification may produce:
            # evaluate at bounded float arguments
            args = [self.ev(a) for a in e.args]
            if any(_is_matrix(a) for a in args):
                raise NumericUnsupported(f"{e.func} of a matrix")
            for a in args:
                if abs(a) > MAX_TRIG_ARGUMENT:
                    raise NumericOverflow("argument too large")
            return _finite(_from_sympy_number(e.func(*[_to_sympy(a) for a in args]), mpmath.mp.dps))
        raise NumericUnsupported(f"cannot evaluate {type(e).__name__}")

    def matrix(self, e):
        if e in self.point:
            return self.point[e]
        if isinstance(e, sympy.MatrixSymbol):
            raise NumericUnsupported(f"no value for the matrix {e}")
        if isinstance(e, sympy.ZeroMatrix):
            return mpmath.zeros(self.size(e.rows), self.size(e.cols))
        if isinstance(e, sympy.Identity):
            return mpmath.eye(self.size(e.rows))
        if isinstance(e, sympy.OneMatrix):
            return mpmath.ones(self.size(e.rows), self.size(e.cols))
        if isinstance(e, sympy.Transpose):
            return self.ev(e.arg).T
        if isinstance(e, sympy.MatAdd):
            parts = [self.ev(a) for a in e.args]
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            return total
        if isinstance(e, sympy.MatMul):
            result = None
            for a in e.args:
                value = self.ev(a)
                result = value if result is None else result * value
            return result
        if isinstance(e, sympy.MatrixBase):
            rows, cols = e.shape
            return mpmath.matrix([[self.ev(e[i, j]) for j in range(cols)] for i in range(rows)])
        raise NumericUnsupported(f"cannot evaluate {type(e).__name__}")


def evaluate(expr: Any, point: Mapping[Any, Any] | None = None, *,
             dims: Mapping[Any, int] | None = None, dps: int = 40):
    """Value of ``expr`` (an mpmath number or matrix) with ``point`` bound to its symbols.

    ``point`` maps sympy Symbols to numbers and MatrixSymbols to mpmath matrices (sympy
    numbers and matrices are converted). Raises a :class:`NumericError` subclass when the
    value is undefined, too large, or cannot be computed.
    """
    with mpmath.workdps(dps):
        bound = {}
        for key, value in (point or {}).items():
            if isinstance(value, sympy.MatrixBase):
                bound[key] = mpmath.matrix([[mpmath.mpf(int(v.p)) / int(v.q) if v.is_Rational
                                             else _from_sympy_number(v, dps) for v in row]
                                            for row in value.tolist()])
            elif isinstance(value, sympy.Basic):
                bound[key] = _Evaluator({}, {}).ev(value)
            else:
                bound[key] = value
        return _Evaluator(bound, dims or {}).ev(expr)
