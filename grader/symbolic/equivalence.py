"""Deciding whether a student's parsed answer means the same as the expected one.

Three notions, one per answer kind:

* :func:`expressions_equivalent` (scalar expressions): a numeric check at several random
  points (positive rationals for every symbol, fixed seed) rejects an answer as soon as a
  point disagrees; otherwise ``simplify(student - expected) == 0`` confirms it, and if that
  is inconclusive, equality is accepted only when *all* points agree to 1e-9 relative (a
  nonzero constant difference found by ``simplify`` still rejects). Points are evaluated by :func:`grader.symbolic.numeric.evaluate`, a
  guarded mpmath walk of the tree (never ``lambdify``, which uses ``exec``; and not
  ``subs().evalf()``, which can be made to compute astronomically large numbers in C).
* :func:`big_o_equivalent` (asymptotic classes, every variable -> infinity independently):
  the sets of dominant monomials must agree; see :mod:`grader.symbolic.bigo`, which also
  caps the work (a hostile big-O answer is refused as too complex, never searched).
* :func:`matrix_expressions_equivalent` (matrix expressions of ``MatrixSymbol`` s): same
  shape, then equal values (to 1e-9 relative, 40 digits) after substituting random
  rational matrices of consistent concrete shapes, at several draws.

Symbolic work on hostile input can be slow, so it runs under :func:`time_limit` (SIGALRM,
only available in the main thread; elsewhere no limit is applied).
"""
from __future__ import annotations

import math
import random
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import mpmath
import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr

from .bigo import (  # re-exported: big-O answers are compared in .bigo
    BigOComparison,
    BigOError,
    big_o_equivalent,
    big_o_terms,
    compare_big_o,
    format_monomial,
)
from .numeric import NumericError, evaluate
from .parse import BigO, shape_text  # noqa: F401 - BigO: re-exported for callers

__all__ = [
    "SymbolicTimeout",
    "BigOError",
    "BigOComparison",
    "time_limit",
    "expressions_equivalent",
    "matrix_expressions_equivalent",
    "big_o_terms",
    "compare_big_o",
    "big_o_equivalent",
    "format_monomial",
]

DEFAULT_SEED = 182_2024


class SymbolicTimeout(BaseException):
    """Raised inside symbolic work that ran out of time.

    A BaseException so that sympy's internal ``except Exception`` blocks cannot swallow it.
    """


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`SymbolicTimeout` in the block after ``seconds`` (main thread only).

    Does nothing when not in the main thread, when SIGALRM is unavailable, or when a timer
    is already running (an outer limit owns it).
    """
    usable = (
        seconds is not None and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        yield
        return

    def _handler(signum, frame):
        raise SymbolicTimeout()

    previous = signal.signal(signal.SIGALRM, _handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_limited(func, seconds, default):
    """``func()`` under a time limit; ``default`` on timeout or any sympy failure."""
    try:
        with time_limit(seconds):
            return func()
    except SymbolicTimeout:
        return default
    except (Exception, RecursionError):  # noqa: BLE001 - sympy may raise anything on odd input
        return default


# ------------------------------------------------------------------ scalar answers


def _short(value: Any) -> str:
    try:
        if isinstance(value, (mpmath.mpf, mpmath.mpc)):
            return mpmath.nstr(value, 6)
        return mpmath.nstr(evaluate(value), 6)
    except Exception:  # noqa: BLE001
        return str(value)


def _is_matrix_value(value: Any) -> bool:
    return isinstance(value, mpmath.matrix)


def _close(a, b, rel_tol: float) -> bool:
    if a == b:
        return True
    return bool(abs(a - b) <= rel_tol * max(abs(a), abs(b)))


MAX_SIMPLIFY_TERMS = 1000   # estimated monomials of the multiplied-out difference
MAX_ROOT_DEGREE = 256       # lcm of the exponents' denominators times the largest exponent
MAX_TRIG_FACTOR = 16        # largest number inside sin/cos (in a product, say)


def _costly_to_simplify(expr) -> bool:
    """Skip ``simplify`` on inputs it may expand explosively (the time limit only works in the
    main thread, and some blow-ups exhaust memory first); the numeric check still decides
    those. Known explosions: big powers of sums; sigma^(7/11)*sigma^64 (the polynomial tools
    work in sigma^(1/11), at degree 704); sin(4096*x) (expanded by repeated angle doubling)."""
    if sympy.count_ops(expr) > 400:
        return True
    denominators, largest = 1, 0
    for node in sympy.preorder_traversal(expr):
        if node.is_Pow and node.exp.is_number:
            if node.base.is_Add and abs(node.exp) > 12:
                return True
            if node.exp.is_Rational:
                denominators = min(math.lcm(denominators, int(node.exp.q)), MAX_ROOT_DEGREE + 1)
                largest = max(largest, abs(node.exp))
        if isinstance(node, (sympy.sin, sympy.cos)) and _has_large_number(node.args[0]):
            return True
    if denominators * largest > MAX_ROOT_DEGREE:
        return True
    return _expanded_size(expr, {}) > MAX_SIMPLIFY_TERMS


def _has_large_number(expr) -> bool:
    return any(abs(r.p) > MAX_TRIG_FACTOR or r.q > MAX_TRIG_FACTOR for r in expr.atoms(sympy.Rational))


def _expanded_size(expr, memo: dict) -> int:
    """An upper estimate of the monomials of ``expr`` multiplied out (``simplify`` expands and
    cancels: (a + b + c)^12 * (d - e)^11 alone is over a thousand terms, and tens of seconds);
    capped just above :data:`MAX_SIMPLIFY_TERMS`."""
    if expr in memo:
        return memo[expr]
    cap = MAX_SIMPLIFY_TERMS + 1
    args = [_expanded_size(a, memo) for a in expr.args]
    if not args:
        size = 1
    elif expr.is_Mul:
        size = math.prod(args)
    elif expr.is_Pow and expr.exp.is_Integer:
        n = min(abs(int(expr.exp)), 64)
        size = math.comb(args[0] + n - 1, n)  # monomials of degree n in args[0] terms
    elif expr.is_Pow:
        size = args[0]
    else:   # sums, and the arguments of functions, which simplify works on too
        size = sum(args)
    memo[expr] = min(size, cap)
    return memo[expr]


def _random_point(symbols: Sequence[sympy.Symbol], rng: random.Random) -> dict:
    # positive rationals in [0.5, 2.0]: exact, away from 0 and from singular points like 1
    return {s: sympy.Rational(rng.randint(50, 200), 100) for s in symbols}


def point_items(point: Mapping) -> list:
    return list(point.items())


def _sorted_symbols(symbols) -> list:
    return sorted(symbols, key=lambda s: str(s))


def expressions_equivalent(
    student: sympy.Expr,
    expected: sympy.Expr,
    *,
    substitutions: Mapping[sympy.Symbol, sympy.Expr] | None = None,
    n_points: int = 6,
    seed: int = DEFAULT_SEED,
    rel_tol: float = 1e-9,
    timeout: float = 5.0,
) -> tuple[bool, str]:
    """Are two scalar expressions equal for all positive values of their symbols?

    ``substitutions`` (e.g. ``{sigma: D**(1/4)}``) are applied to both sides first.
    The detail only describes the student's side (values of the student's answer), so it
    can be shown to students.
    """
    for side, expr in (("your answer", student), ("the expected answer", expected)):
        if isinstance(expr, MatrixExpr):
            return False, f"{side} is a {shape_text(expr.shape)} matrix; a scalar was expected"
    subs = dict(substitutions or {})
    s = student.xreplace(subs) if subs else student
    e = expected.xreplace(subs) if subs else expected
    if s == e:
        return True, "identical to the expected expression"

    def symbolic():
        diff = s - e
        if _costly_to_simplify(diff):
            return "unknown"
        diff = sympy.simplify(diff)
        if diff == 0 or diff.is_zero is True:
            return "equal"
        if diff.is_number and diff.is_zero is False:
            return "different"          # a nonzero constant: no point can agree exactly
        return "unknown"

    symbols = _sorted_symbols((s.free_symbols | e.free_symbols))
    rng = random.Random(seed)
    points = [_random_point(symbols, rng) for _ in range(n_points if symbols else 1)]

    def numeric():
        for point in points:
            try:
                sv = evaluate(s, point)
            except NumericError:
                return ("undefined", point, None)
            try:
                ev = evaluate(e, point)
            except NumericError:
                return ("undefined", point, sv)
            if _is_matrix_value(sv) or _is_matrix_value(ev):
                return ("undefined", point, None)
            if not _close(sv, ev, rel_tol):
                return ("differs", point, sv)
        return ("equal", None, None)

    # The numeric check first: it is cheap and bounded, and it settles most wrong answers.
    # simplify, which no time limit bounds outside the main thread (nested trigonometry can
    # take minutes), then only runs for answers that could be right.
    outcome = _run_limited(numeric, timeout, ("timeout", None, None))
    verdict, point, value = outcome
    if verdict == "differs":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point.items()) or "no variables"
        return False, f"at {where} your answer evaluates to {_short(value)}, a different value"
    symbolic_verdict = _run_limited(symbolic, timeout, "unknown")
    if symbolic_verdict == "equal":
        return True, "equal by symbolic simplification"
    if verdict == "equal" and symbolic_verdict == "different":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point_items(points[0])) or "no variables"
        return False, (f"at {where} your answer evaluates to {_short(evaluate(s, points[0]))}, "
                       "a (slightly) different value")
    if verdict == "equal":
        return True, f"equal at {len(points)} random points (symbolic simplification inconclusive)"
    if verdict == "undefined":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point.items())
        if value is None:
            return False, f"at {where} your answer has no finite value (or it is far too large)"
        return False, f"could not confirm equivalence at {where} (your answer gives {_short(value)})"
    return False, "could not confirm equivalence within the time limit"


# ------------------------------------------------------------------ matrix answers


def matrix_expressions_equivalent(
    student: Any,
    expected: Any,
    *,
    dims: Mapping[sympy.Symbol, int] | None = None,
    draws: int = 3,
    seed: int = DEFAULT_SEED,
    rel_tol: float = 1e-9,
    timeout: float = 5.0,
) -> tuple[bool, str]:
    """Are two matrix expressions (``MatrixSymbol`` s, ``*``, ``+``, transposes, 1x1 scalars) equal?

    Checks the shapes, then substitutes random exact rational matrices (positive entries,
    concrete sizes from ``dims``; unknown symbolic sizes get distinct small sizes) and
    compares the results exactly (numerically to ``rel_tol`` if something irrational appears).
    """
    s_is, e_is = isinstance(student, MatrixExpr), isinstance(expected, MatrixExpr)
    if not s_is:
        if e_is:
            return False, f"your answer is a scalar, but a {shape_text(expected.shape)} matrix was expected"
        return expressions_equivalent(student, expected, seed=seed, timeout=timeout)
    if not e_is:
        return False, f"your answer is a {shape_text(student.shape)} matrix, but a scalar was expected"
    if student.shape != expected.shape:
        return False, (f"your answer is a {shape_text(student.shape)} matrix, but the answer must be "
                       f"a {shape_text(expected.shape)} matrix")
    if student == expected:
        return True, "identical to the expected expression"

    matrices = sorted(student.atoms(sympy.MatrixSymbol) | expected.atoms(sympy.MatrixSymbol), key=str)
    dim_symbols: set = set()
    for m in matrices:
        for d in m.shape:
            dim_symbols |= sympy.sympify(d).free_symbols
    sizes = dict(dims or {})
    next_size = 3
    for d in sorted(dim_symbols, key=str):
        if d not in sizes:
            while next_size in sizes.values():
                next_size += 1
            sizes[d] = next_size
            next_size += 1
    scalars = set()
    for expr in (student, expected):
        for sym in expr.free_symbols:
            if isinstance(sym, sympy.Symbol) and sym not in sizes:
                scalars.add(sym)
    scalars = _sorted_symbols(scalars)
    rng = random.Random(seed)

    def concrete(d):
        return int(sympy.sympify(d).xreplace(sizes))

    def check():
        for _ in range(draws):
            rule: dict = {}
            for m in matrices:
                rows, cols = concrete(m.shape[0]), concrete(m.shape[1])
                rule[m] = sympy.ImmutableMatrix(
                    rows, cols, lambda i, j: sympy.Rational(rng.randint(1, 9), rng.randint(1, 4)))
            rule.update(_random_point(scalars, rng))
            try:
                sv = evaluate(student, rule, dims=sizes)
                ev = evaluate(expected, rule, dims=sizes)
            except NumericError:
                return None
            if not (_is_matrix_value(sv) and _is_matrix_value(ev)):
                return None
            if (sv.rows, sv.cols) != (ev.rows, ev.cols):
                return False
            for i in range(sv.rows):
                for j in range(sv.cols):
                    if not _close(sv[i, j], ev[i, j], rel_tol):
                        return False
        return True

    result = _run_limited(check, timeout, None)
    if result is True:
        return True, f"equal for {draws} random choices of the matrices"
    if result is None:
        return False, "could not confirm equivalence (evaluation failed or ran out of time)"
    return False, "differs from the expected expression for random matrices of the right shapes"
