"""Deciding whether a student's parsed answer means the same as the expected one.

Three notions, one per answer kind:

* :func:`expressions_equivalent` (scalar expressions): ``simplify(student - expected) == 0``
  first; if that is inconclusive, a numeric check at several random points (positive
  rationals for every symbol, fixed seed) can confirm equality only when *all* points agree
  to 1e-9 relative. Points are evaluated by :func:`grader.symbolic.numeric.evaluate`, a
  guarded mpmath walk of the tree (never ``lambdify``, which uses ``exec``; and not
  ``subs().evalf()``, which can be made to compute astronomically large numbers in C).
* :func:`big_o_equivalent` (asymptotic classes, every variable -> infinity independently):
  the argument of ``O(...)`` is expanded into monomials, coefficients are dropped, and only
  the dominant monomials are kept: a monomial is dropped when it is dominated, i.e. its
  exponent vector is <= (componentwise) another's, or more generally <= a convex
  combination of others' (then it is bounded by their sum by the weighted AM-GM inequality;
  e.g. N*M is dominated by N^2 + M^2). Two answers are equivalent iff the sets of dominant
  monomials agree. This is exact for sums of monomials with positive coefficients.
* :func:`matrix_expressions_equivalent` (matrix expressions of ``MatrixSymbol`` s): same
  shape, then equal values (to 1e-9 relative, 40 digits) after substituting random
  rational matrices of consistent concrete shapes, at several draws.

Symbolic work on hostile input can be slow, so it runs under :func:`time_limit` (SIGALRM,
only available in the main thread; elsewhere no limit is applied).
"""
from __future__ import annotations

import random
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import mpmath
import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.solvers.simplex import InfeasibleLPError, linprog

from .numeric import NumericError, evaluate
from .parse import BigO, format_expression

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
MAX_TERMS = 5000


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


def _costly_to_simplify(expr) -> bool:
    """Skip ``simplify`` on inputs it may expand explosively (the time limit only works in the
    main thread); the numeric check still decides those."""
    if sympy.count_ops(expr) > 400:
        return True
    for node in sympy.preorder_traversal(expr):
        if node.is_Pow and node.base.is_Add and node.exp.is_number and abs(node.exp) > 12:
            return True
    return False


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
            return False, f"{side} is a matrix of shape {expr.shape}; a scalar was expected"
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

    symbolic_verdict = _run_limited(symbolic, timeout, "unknown")
    if symbolic_verdict == "equal":
        return True, "equal by symbolic simplification"

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

    outcome = _run_limited(numeric, timeout, ("timeout", None, None))
    verdict, point, value = outcome
    if verdict == "equal" and symbolic_verdict == "different":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point_items(points[0])) or "no variables"
        return False, (f"at {where} your answer evaluates to {_short(evaluate(s, points[0]))}, "
                       "a (slightly) different value")
    if verdict == "equal":
        return True, f"equal at {len(points)} random points (symbolic simplification inconclusive)"
    if verdict == "differs":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point.items()) or "no variables"
        return False, f"at {where} your answer evaluates to {_short(value)}, a different value"
    if verdict == "undefined":
        where = ", ".join(f"{sym}={_short(val)}" for sym, val in point.items())
        if value is None:
            return False, f"at {where} your answer has no finite value (or it is far too large)"
        return False, f"could not confirm equivalence at {where} (your answer gives {_short(value)})"
    return False, "could not confirm equivalence within the time limit"


# ------------------------------------------------------------------ matrix answers


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(x) for x in shape) + ")"


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
            return False, (f"your answer is a scalar, but a matrix of shape "
                           f"{_shape_text(expected.shape)} was expected")
        return expressions_equivalent(student, expected, seed=seed, timeout=timeout)
    if not e_is:
        return False, f"your answer is a matrix of shape {_shape_text(student.shape)}; a scalar was expected"
    if student.shape != expected.shape:
        return False, (f"your answer has shape {_shape_text(student.shape)}, but the answer must "
                       f"have shape {_shape_text(expected.shape)}")
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


# ------------------------------------------------------------------------- big-O


class BigOError(ValueError):
    """A big-O answer outside what can be compared; the message is meant for students."""


Key = tuple  # exponent vector, one Rational per variable


def _order_variables(exprs, variables: Sequence[sympy.Symbol] | None) -> list:
    free = set()
    for e in exprs:
        free |= e.free_symbols
    ordered = [v for v in (variables or []) if v in free]
    ordered += sorted((v for v in free if v not in ordered), key=str)
    return ordered


def _merge(a: dict, b: dict, sign=1) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + sign * v
    return {k: v for k, v in out.items() if v != 0}


def _multiply(a: dict, b: dict) -> dict:
    if len(a) * len(b) > MAX_TERMS:
        raise BigOError("the expression is too large to expand")
    out: dict = {}
    for ka, va in a.items():
        for kb, vb in b.items():
            k = tuple(x + y for x, y in zip(ka, kb))
            out[k] = out.get(k, 0) + va * vb
    return {k: v for k, v in out.items() if v != 0}


def _terms(expr, index: dict, names: str) -> dict:
    """Expand ``expr`` into ``{exponent vector: coefficient}`` (fractional exponents allowed)."""
    n = len(index)
    zero = tuple(sympy.Integer(0) for _ in range(n))
    if isinstance(expr, BigO):
        return _terms(expr.args[0], index, names)
    if expr.is_number:
        if expr == 0:
            return {}
        if expr.is_extended_real is not True or expr.is_finite is False:
            raise BigOError(f"the constant {format_expression(expr)} is not a finite real number")
        return {zero: expr}
    if expr in index:
        k = list(zero)
        k[index[expr]] = sympy.Integer(1)
        return {tuple(k): sympy.Integer(1)}
    if expr.is_Add:
        out: dict = {}
        for arg in expr.args:
            out = _merge(out, _terms(arg, index, names))
            if len(out) > MAX_TERMS:
                raise BigOError("the expression is too large to expand")
        return out
    if expr.is_Mul:
        out = {zero: sympy.Integer(1)}
        for arg in expr.args:
            out = _multiply(out, _terms(arg, index, names))
        return out
    if expr.is_Pow:
        base, exponent = expr.args
        if not exponent.is_number:
            raise BigOError(f"exponential growth ({format_expression(expr)}) cannot be compared here; "
                            f"answers are polynomials in {names}")
        exponent = sympy.nsimplify(exponent) if isinstance(exponent, sympy.Float) else exponent
        if not isinstance(exponent, sympy.Rational):
            raise BigOError(f"the exponent {format_expression(exponent)} must be a rational number")
        bt = _terms(base, index, names)
        if not bt:
            return {}
        if exponent.is_Integer and exponent >= 0:
            result = {zero: sympy.Integer(1)}
            for _ in range(int(exponent)):
                result = _multiply(result, bt)
            return result
        if len(bt) == 1:
            (k, c), = bt.items()
            if c < 0 and not exponent.is_Integer:
                raise BigOError(f"{format_expression(expr)} is not a real number for large sizes")
            return {tuple(x * exponent for x in k): c ** exponent}
        if exponent > 0 and all(c > 0 for c in bt.values()):
            # (m_1 + ... + m_r)^p is of the order of m_1^p + ... + m_r^p for p > 0
            return {tuple(x * exponent for x in k): sympy.Integer(1) for k in _dominant(bt)}
        raise BigOError(f"{format_expression(expr)}: negative or fractional powers of sums cannot be "
                        "compared; write the answer as a sum of products of powers")
    fname = getattr(getattr(expr, "func", None), "__name__", type(expr).__name__)
    raise BigOError(f"{fname}(...) cannot be compared here: big-O answers must be sums of products "
                    f"of powers of {names}")


def _weakly_below(p: Key, q: Key) -> bool:
    return all(x <= y for x, y in zip(p, q))


def _hull_dominates(points: Sequence[Key], p: Key) -> bool:
    """Is ``p`` <= (componentwise) some convex combination of ``points``?"""
    if not points:
        return False
    if any(_weakly_below(p, q) for q in points):
        return True
    if len(points) < 2:
        return False
    k = len(points)
    dims = len(p)
    A = [[-points[i][j] for i in range(k)] for j in range(dims)]
    b = [-p[j] for j in range(dims)]
    try:
        linprog([0] * k, A=A, b=b, A_eq=[[1] * k], b_eq=[1])
    except InfeasibleLPError:
        return False
    return True


def _dominant(terms: dict) -> list[Key]:
    points = list(terms)
    maximal = [p for p in points if not any(q != p and _weakly_below(p, q) for q in points)]
    return [p for p in maximal if not _hull_dominates([q for q in maximal if q != p], p)]


def format_monomial(key: Key, variables: Sequence[sympy.Symbol]) -> str:
    """``(1, 2, 0)`` over (N, D, M) -> ``N*D^2``; the zero vector -> ``1``."""
    parts = []
    for var, power in zip(variables, key):
        if power == 0:
            continue
        if power == 1:
            parts.append(str(var))
        elif isinstance(power, sympy.Integer) or (isinstance(power, sympy.Rational) and power.q == 1):
            parts.append(f"{var}^{power}")
        else:
            parts.append(f"{var}^({power})")
    return "*".join(parts) if parts else "1"


def _analyse(expr, variables: list) -> list[Key]:
    index = {v: i for i, v in enumerate(variables)}
    names = ", ".join(str(v) for v in variables) or "the sizes"
    terms = _terms(expr, index, names)
    if not terms:
        raise BigOError("the expression is 0")
    dominant = _dominant(terms)
    negative = [k for k in dominant if terms.get(k, 1) < 0]
    if negative:
        raise BigOError("the expression becomes negative for large sizes (its term "
                        f"{format_monomial(negative[0], variables)} has a negative coefficient)")
    return sorted(dominant, key=lambda k: (-sum(k), [-x for x in k]))


def big_o_terms(expr: sympy.Expr, variables: Sequence[sympy.Symbol] | None = None) -> list[sympy.Expr]:
    """The dominant monomials of a big-O expression (coefficients dropped), largest first."""
    ordered = _order_variables([expr], variables)
    keys = _analyse(expr, ordered)
    return [sympy.Mul(*[v**p for v, p in zip(ordered, k)]) for k in keys]


@dataclass
class BigOComparison:
    """The result of comparing two big-O answers (monomials as display strings)."""

    equivalent: bool
    student_terms: list[str]
    expected_terms: list[str]
    grows_faster: list[str] = field(default_factory=list)   # student terms the expected class does not bound
    misses: int = 0                                           # expected terms the student's class does not bound

    def student_detail(self) -> str:
        """Student-safe diagnostics: names only the student's own terms."""
        parts = [f"your answer grows like {' + '.join(self.student_terms)}"]
        if not self.equivalent:
            if self.grows_faster:
                verb = "grows" if len(self.grows_faster) == 1 else "grow"
                parts.append(f"{' and '.join(self.grows_faster)} {verb} faster than the expected cost")
            if self.misses:
                parts.append("a dominant term of the expected cost is missing (your answer grows "
                             "more slowly when some size goes to infinity)")
        return "; ".join(parts)

    def full_detail(self) -> str:
        """Both sides (reveals the expected terms: staff only)."""
        verb = "equivalent" if self.equivalent else "not equivalent"
        return (f"{verb}: your answer grows like {', '.join(self.student_terms)}; "
                f"expected terms {', '.join(self.expected_terms)}")


def compare_big_o(student: sympy.Expr, expected: sympy.Expr,
                  variables: Sequence[sympy.Symbol] | None = None) -> BigOComparison:
    """Compare asymptotic classes, every variable -> infinity independently.

    Raises :class:`BigOError` (student-readable) when either side cannot be analysed.
    """
    ordered = _order_variables([student, expected], variables)
    s_keys = _analyse(student, ordered)
    e_keys = _analyse(expected, ordered)
    grows_faster = [k for k in s_keys if not _hull_dominates(e_keys, k)]
    misses = [k for k in e_keys if not _hull_dominates(s_keys, k)]
    return BigOComparison(
        equivalent=set(s_keys) == set(e_keys),
        student_terms=[format_monomial(k, ordered) for k in s_keys],
        expected_terms=[format_monomial(k, ordered) for k in e_keys],
        grows_faster=[format_monomial(k, ordered) for k in grows_faster],
        misses=len(misses),
    )


def big_o_equivalent(student: sympy.Expr, expected: sympy.Expr,
                     variables: Sequence[sympy.Symbol] | None = None) -> tuple[bool, str]:
    """Same asymptotic class? The detail names the dominant terms of both sides, e.g.
    ``your answer grows like N^2*D; expected terms N*D_random*D, N*D_random*M``."""
    try:
        cmp = compare_big_o(student, expected, variables)
    except BigOError as exc:
        return False, str(exc)
    if cmp.equivalent:
        return True, f"both grow like {', '.join(cmp.student_terms)}"
    return False, (f"your answer grows like {', '.join(cmp.student_terms)}; "
                   f"expected terms {', '.join(cmp.expected_terms)}")
