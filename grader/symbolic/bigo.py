"""Comparing asymptotic classes (big-O answers), with bounded work.

Model
-----
Every size goes to infinity independently. The argument of ``O(...)`` is turned into
monomials ``c * N^a * D^b * ...`` (exponent vectors of exact rationals), coefficients are
dropped, and only the *dominant* monomials are kept: a monomial is dropped when its exponent
vector is <= (componentwise) another's, or more generally <= a convex combination of others'
(then it is bounded by their sum, by the weighted AM-GM inequality; e.g. N*M is dominated
by N^2 + M^2). Two answers are equivalent iff their sets of dominant monomials agree. This
is exact for sums of monomials with positive coefficients.

Bounded work
------------
Student text is hostile or simply unlucky (``O((N + D + M + D_random)^12)`` has 455
monomials when multiplied out, and deciding dominance naively takes one linear program per
monomial). The time limit of :mod:`.equivalence` is only a backstop (it works only in the
main thread), so the work here is capped instead, and an answer over a cap is refused with
a :class:`BigOError` ("too complex ..."):

* When no coefficient is negative (nothing can cancel), a product or power only needs the
  dominant monomials of its factors (the dominant monomials of a product are sums of
  dominant monomials of the factors), so those are pruned after every step, and
  ``(m_1 + ... + m_r)^p`` is read as ``m_1^p + ... + m_r^p`` without expanding.
  Otherwise (a subtraction somewhere) a cancellation can uncover dominated monomials
  (``(N + 1)^2 - N^2`` is ``2*N + 1``), so the expression is multiplied out exactly,
  within :data:`MAX_TERMS` monomials.
* Dominance is decided exactly, on ints (every exponent times one common denominator): a
  cheap componentwise filter, then a few weight vectors that confirm most dominant
  monomials at once, and only then a small fraction-free simplex (phase I, Bland's rule)
  per undecided monomial, weighed first against the monomials known to dominate, and with
  at most :data:`MAX_CANDIDATES` monomials.
* Everything (monomial products, comparisons, simplex updates) is charged to one
  :class:`_Budget` of :data:`MAX_WORK` units per comparison, and exponents are capped
  (:data:`MAX_EXPONENT_BITS`, :data:`MAX_SCALE_BITS`).
"""
from __future__ import annotations

import math
import operator
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

import mpmath
import sympy

from .numeric import NumericError, evaluate
from .parse import BigO, format_expression

__all__ = [
    "BigOError",
    "BigOComparison",
    "big_o_terms",
    "compare_big_o",
    "big_o_equivalent",
    "format_monomial",
    "MAX_TERMS",
    "MAX_CANDIDATES",
    "MAX_WORK",
]

MAX_TERMS = 2000            # monomials in any intermediate result
MAX_CANDIDATES = 600        # columns of one linear program (monomials weighed together)
MAX_WORK = 2_000_000        # work units per comparison (about 0.3-0.6 s of Python per million)
FLOAT_WORK = 60             # units per product of float coefficients (mpmath is much slower)
MAX_EXPONENT_BITS = 64      # numerator and denominator of every exponent
MAX_SCALE_BITS = 128        # common denominator of all the exponents of a comparison
MAX_COEFFICIENT_BITS = 4096 # beyond this, exact coefficients are carried as 60-digit floats
PRUNE_AT = 24               # intermediate results larger than this get the convex-hull pruning
_DPS = 60                   # digits of the float coefficients (irrational constants)

#: An exponent vector, one int per variable: the exponents times the common denominator
#: (the "scale") of every exponent in the comparison, so that all the work is on ints.
Key = tuple


class BigOError(ValueError):
    """A big-O answer outside what can be compared; the message is meant for students."""


def _too_complex(why: str) -> BigOError:
    return BigOError(f"too complex to compare ({why}); simplify it, keeping only the terms "
                     "that dominate (coefficients and smaller terms do not matter)")


class _Budget:
    """Work units left for one comparison; running out is a student-readable refusal.

    ``weight`` makes every unit dearer when the exponents have a large common denominator
    (the ints of the simplex grow with it)."""

    def __init__(self, units: int = MAX_WORK, weight: int = 1):
        self.left = units
        self.weight = weight

    def spend(self, units: int) -> None:
        self.left -= units * self.weight
        if self.left < 0:
            raise _too_complex("it needs too much work to decide which terms dominate")


# ----------------------------------------------------------------- coefficients
# Exact ints and Fractions, except for irrational constants (pi, sqrt(2), ...) and
# astronomically large rationals, which are carried as mpmath floats: only their signs
# and cancellations matter, and a relative 1e-40 residue of a sum counts as a cancellation.
# The floats are computed at _DPS digits: _analyse sets that precision once (per operation
# it would cost more than the arithmetic).

_CANCELLED = mpmath.mpf("1e-40")


def _is_exact(c) -> bool:
    return isinstance(c, (int, Fraction))


def _as_float(c):
    if _is_exact(c):
        return mpmath.mpf(c.numerator) / c.denominator
    return c


def _tame(c):
    if max(c.numerator.bit_length(), c.denominator.bit_length()) > MAX_COEFFICIENT_BITS:
        return _as_float(c)
    return c


def _c_mul(a, b):
    if _is_exact(a) and _is_exact(b):
        return _tame(a * b)
    return _as_float(a) * _as_float(b)


def _c_add(a, b):
    if _is_exact(a) and _is_exact(b):
        return _tame(a + b)
    fa, fb = _as_float(a), _as_float(b)
    total = fa + fb
    if abs(total) <= _CANCELLED * max(abs(fa), abs(fb)):
        return 0
    return total


def _c_pow(c, exponent: Fraction, expr):
    if c == 1:
        return c
    if c < 0 and exponent.denominator != 1:
        raise BigOError(f"{format_expression(expr)} is not a real number for large sizes")
    if _is_exact(c) and exponent.denominator == 1:
        bits = max(c.numerator.bit_length(), c.denominator.bit_length())
        if bits * abs(exponent.numerator) <= MAX_COEFFICIENT_BITS:
            return Fraction(c) ** exponent.numerator
    size = abs(_as_float(c)) ** (mpmath.mpf(exponent.numerator) / exponent.denominator)
    return -size if c < 0 and exponent.numerator % 2 else size


def _constant(expr):
    """The value of a numeric leaf: exact when rational, else a float; refuses the rest."""
    if isinstance(expr, sympy.Rational):
        return int(expr.p) if expr.q == 1 else Fraction(int(expr.p), int(expr.q))
    text = format_expression(expr)
    try:
        value = evaluate(expr, dps=_DPS)
    except NumericError:
        raise BigOError(f"the constant {text} has no finite value") from None
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            raise BigOError(f"the constant {text} is not a real number")
        value = value.real
    if not isinstance(value, mpmath.mpf):
        raise BigOError(f"the constant {text} is not a number")
    if value != 0 and abs(value) < mpmath.mpf(10) ** -30:
        raise BigOError(f"cannot tell whether the constant {text} is 0; simplify it")
    return 0 if value == 0 else value


# -------------------------------------------------------------------- exponents


def _rational_exponent(value, expr) -> Fraction:
    if not isinstance(value, sympy.Rational):
        raise BigOError(f"the exponent {format_expression(value)} in {format_expression(expr)} "
                        "must be a rational number")
    result = Fraction(int(value.p), int(value.q))
    if max(abs(result.numerator).bit_length(), result.denominator.bit_length()) > MAX_EXPONENT_BITS:
        raise _too_complex(f"the exponent {result} is too large")
    return result


def _denominators(expr, memo: dict) -> int:
    """A common denominator of every exponent that the expansion of ``expr`` can produce
    (those of its parts included: (N^(1/2) + D)^2 needs 2)."""
    if expr in memo:
        return memo[expr]
    result = 1
    if expr.is_Pow and isinstance(expr.exp, sympy.Rational):
        result = _denominators(expr.base, memo) * int(expr.exp.q)
    else:
        for arg in expr.args:
            result = math.lcm(result, _denominators(arg, memo))
    if result.bit_length() > MAX_SCALE_BITS:
        raise _too_complex("its exponents have too many different denominators")
    memo[expr] = result
    return result


def _common_scale(exprs) -> int:
    memo: dict = {}
    scale = 1
    for e in exprs:
        scale = math.lcm(scale, _denominators(e, memo))
    if scale.bit_length() > MAX_SCALE_BITS:
        raise _too_complex("its exponents have too many different denominators")
    return scale


def _times(key: Key, e: Fraction) -> Key:
    """``key * e``; exact because the scale is a multiple of every denominator involved."""
    out = []
    for x in key:
        q, r = divmod(x * e.numerator, e.denominator)
        if r:   # pragma: no cover - excluded by _denominators
            raise BigOError("internal error: an exponent has an unexpected denominator")
        out.append(q)
    return tuple(out)


def _check_key(key: Key, scale: int) -> None:
    limit = scale << MAX_EXPONENT_BITS
    if any(abs(x) > limit for x in key):
        raise _too_complex("an exponent is too large")


# -------------------------------------------------------------------- dominance


def _weakly_below(p: Key, q: Key) -> bool:
    return all(map(operator.le, p, q))


def _maximal(keys: Iterable[Key], budget: _Budget) -> list[Key]:
    """The keys not <= (componentwise) another. Largest total first: a key can only be
    below keys with a larger total, so it is compared with the kept ones only."""
    kept: list[Key] = []
    for p in sorted(set(keys), key=lambda k: (-sum(k), k)):
        budget.spend(len(kept) + 1)
        if not any(_weakly_below(p, q) for q in kept):
            kept.append(p)
    return kept


def _directions(d: int) -> list[tuple[int, ...]]:
    """Positive weight vectors (fixed seed) for the cheap vertex test in :func:`_confirmed`."""
    rng = random.Random(d)
    dirs = [tuple(1 if i == j else 0 for i in range(d)) for j in range(d)]
    dirs.append((1,) * d)
    dirs += [tuple(rng.randint(1, 9) for _ in range(d)) for _ in range(2 * d + 4)]
    return dirs


def _confirmed(points: Sequence[Key], budget: _Budget) -> set[Key]:
    """Points that are the unique maximum of w.x for some w >= 0: certainly dominant."""
    found: set[Key] = set()
    if not points:
        return found
    for w in _directions(len(points[0])):
        budget.spend(len(points))
        values = [sum(map(operator.mul, w, p)) for p in points]
        top = max(values)
        winners = [p for p, v in zip(points, values) if v == top]
        if len(winners) == 1:
            found.add(winners[0])
    return found


def _pivot(rows: list[list[int]], gain: list[int], r: int, c: int) -> list[int]:
    """Eliminate column ``c`` from every row but ``r`` (and from ``gain``), fraction-free:
    a row is an equation, so it may be scaled by any positive number (the pivot, then the
    gcd of the row). Returns the new gain row."""
    prow = rows[r]
    a = prow[c]
    for i, row in enumerate(rows):
        f = row[c]
        if i != r and f:
            new = [a * x - f * y for x, y in zip(row, prow)]
            g = math.gcd(*new)
            rows[i] = [x // g for x in new] if g > 1 else new
    f = gain[c]
    new = [a * x - f * y for x, y in zip(gain, prow)]
    g = math.gcd(*new)
    return [x // g for x in new] if g > 1 else new


def _reaches(points: Sequence[Key], p: Key, budget: _Budget) -> bool:
    """Is ``p`` <= (componentwise) a convex combination of ``points``? Exact LP feasibility.

    Phase I of the simplex method on: sum_i l_i q_i - s = p, sum_i l_i = 1, l, s >= 0,
    with one (implicit) artificial variable per row, on ints. The entering column is the
    one of largest gain (few pivots), except after a degenerate pivot, where Bland's rule
    takes over until progress resumes: no cycling, so it terminates. Only d + 1 rows
    (d variables) and one column per point: a pivot costs O(d * len(points)).
    """
    d, k = len(p), len(points)
    n = k + d
    rows = []
    for j in range(d):
        row = [q[j] for q in points] + [-1 if i == j else 0 for i in range(d)] + [p[j]]
        rows.append([-x for x in row] if row[-1] < 0 else row)
    rows.append([1] * k + [0] * d + [1])
    basis = [n + r for r in range(len(rows))]          # artificials: ids above every column
    gain = [sum(col) for col in zip(*rows)]            # phase-I gains; gain[n] > 0: infeasible so far
    bland = False
    while gain[n] > 0:
        budget.spend(len(rows) * (n + 1))
        entering = _entering(gain, n, bland)
        if entering is None:
            return False                               # the phase-I optimum is > 0
        best = None                                    # least rhs/entry; ties: least basis id
        for r, row in enumerate(rows):
            a = row[entering]
            if a > 0:
                if best is None:
                    best = r
                    continue
                lhs, rhs = row[n] * rows[best][entering], rows[best][n] * a
                if lhs < rhs or (lhs == rhs and basis[r] < basis[best]):
                    best = r
        if best is None:                               # pragma: no cover - phase I is bounded
            return False
        bland = rows[best][n] == 0                     # degenerate: no progress this time
        gain = _pivot(rows, gain, best, entering)
        basis[best] = entering
    return True


def _entering(gain: list[int], n: int, bland: bool) -> int | None:
    """Bland's rule (the first improving column), or the largest gain (Dantzig's rule)."""
    if bland:
        return next((c for c in range(n) if gain[c] > 0), None)
    top = max(range(n), key=gain.__getitem__, default=None)
    return top if top is not None and gain[top] > 0 else None


def _hull_dominates(points: Sequence[Key], p: Key, budget: _Budget) -> bool:
    """Is ``p`` <= (componentwise) some convex combination of ``points``?"""
    if not points:
        return False
    if any(_weakly_below(p, q) for q in points):
        return True
    if len(points) < 2:
        return False
    if len(points) > MAX_CANDIDATES:
        raise _too_complex(f"more than {MAX_CANDIDATES} terms to weigh against each other")
    return _reaches(points, p, budget)


def _dominant(keys: Iterable[Key], budget: _Budget) -> list[Key]:
    """The keys not <= a convex combination of the others, largest total first.

    Each undecided key is first weighed against the keys already known to be dominant (a
    small linear program, and usually enough), and only then against all the keys left: a
    dropped key is itself below a convex combination of those left, so it is never needed.
    """
    candidates = _maximal(keys, budget)
    known = _confirmed(candidates, budget)
    dropped: set = set()
    for p in candidates:
        if p in known:
            continue
        budget.spend(len(known))
        if _hull_dominates(sorted(known), p, budget):
            dropped.add(p)
            continue
        budget.spend(len(candidates))
        if _hull_dominates([q for q in candidates if q != p and q not in dropped], p, budget):
            dropped.add(p)
        else:
            known.add(p)
    return [p for p in candidates if p not in dropped]


# -------------------------------------------------------------------- expansion


def _all_coefficients_positive(expr) -> bool:
    """Are all numeric leaves outside exponents > 0? Then no term of the expansion can cancel."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_number and not node.has(BigO):
            if not _constant(node) > 0:
                return False
        elif node.is_Pow:
            stack.append(node.base)     # an exponent is not a coefficient
        else:
            stack.extend(node.args)
    return True


class _Expander:
    """``expr`` -> ``{key: coefficient}``, within the caps of the module docstring.

    With ``prune`` (no negative coefficient anywhere) intermediate results keep only their
    dominant monomials, with coefficient 1.
    """

    def __init__(self, variables: Sequence[sympy.Symbol], scale: int, budget: _Budget, prune: bool):
        self.index = {v: i for i, v in enumerate(variables)}
        self.names = ", ".join(str(v) for v in variables) or "the sizes"
        self.scale = scale
        self.zero = (0,) * len(variables)
        self.budget = budget
        self.prune = prune

    def terms(self, expr) -> dict:
        if isinstance(expr, BigO):
            return self.terms(expr.args[0])
        if expr.is_number and not expr.has(BigO):
            value = _constant(expr)
            if value == 0:
                return {}
            return {self.zero: 1 if self.prune else value}
        if expr in self.index:
            key = list(self.zero)
            key[self.index[expr]] = self.scale
            return {tuple(key): 1}
        if expr.is_Add:
            return self.add(expr)
        if expr.is_Mul:
            out = {self.zero: 1}
            for arg in expr.args:
                out = self.reduce(self.multiply(out, self.terms(arg)))
            return out
        if expr.is_Pow:
            return self.power(expr)
        fname = getattr(getattr(expr, "func", None), "__name__", type(expr).__name__)
        raise BigOError(f"{fname}(...) cannot be compared here: big-O answers must be sums of "
                        f"products of powers of {self.names}")

    def add(self, expr) -> dict:
        out: dict = {}
        for arg in expr.args:
            _accumulate(out, self.terms(arg).items())
            if len(out) > MAX_TERMS:
                raise _too_complex(f"more than {MAX_TERMS} terms")
        return self.reduce(out)

    def multiply(self, a: dict, b: dict) -> dict:
        if len(a) * len(b) > MAX_TERMS * 4:
            raise _too_complex(f"more than {MAX_TERMS} terms when multiplied out")
        exact = all(map(_is_exact, a.values())) and all(map(_is_exact, b.values()))
        self.budget.spend(len(a) * len(b) * (1 if exact else FLOAT_WORK))
        out: dict = {}
        _accumulate(out, ((tuple(map(operator.add, ka, kb)), _c_mul(va, vb))
                          for ka, va in a.items() for kb, vb in b.items()))
        if len(out) > MAX_TERMS:
            raise _too_complex(f"more than {MAX_TERMS} terms when multiplied out")
        return out

    def reduce(self, terms: dict) -> dict:
        """When pruning: drop the monomials that cannot dominate (cheap filter; the hull test
        only once the result grows, so that products stay small)."""
        if not self.prune or len(terms) <= 1:
            return terms
        keys = _maximal(terms, self.budget)
        if len(keys) > PRUNE_AT:
            keys = _dominant(keys, self.budget)
        return dict.fromkeys(keys, 1)

    def power(self, expr) -> dict:
        base, exponent = expr.args
        if not exponent.is_number:
            raise BigOError(f"exponential growth ({format_expression(expr)}) cannot be compared here; "
                            f"answers are polynomials in {self.names}")
        e = _rational_exponent(exponent, expr)
        bt = self.terms(base)
        if not bt:
            if e <= 0:
                raise BigOError(f"{format_expression(expr)} divides by 0")
            return {}
        if len(bt) == 1:
            (k, c), = bt.items()
            return {self.scaled(k, e): 1 if self.prune else _c_pow(c, e, expr)}
        if e > 0 and self.prune:
            # (m_1 + ... + m_r)^p is of the order of m_1^p + ... + m_r^p for p > 0 (and scaling
            # keeps dominated monomials dominated): no expansion
            return {self.scaled(k, e): 1 for k in bt}
        if e > 0 and e.denominator == 1:
            # something may cancel later ((N + 1)^2 - N^2): multiply out. Every factor adds at
            # least one monomial (an edge of the Newton polytope cannot cancel), so a large
            # exponent is refused before any work
            if e.numerator > MAX_TERMS:
                raise _too_complex(f"more than {MAX_TERMS} terms when multiplied out")
            result = {self.zero: 1}
            for _ in range(e.numerator):
                result = self.multiply(result, bt)
            return result
        if e > 0 and all(c > 0 for c in bt.values()):
            return {self.scaled(k, e): 1 for k in _dominant(bt, self.budget)}
        raise BigOError(f"{format_expression(expr)}: negative or fractional powers of sums cannot be "
                        "compared; write the answer as a sum of products of powers")

    def scaled(self, key: Key, e: Fraction) -> Key:
        result = _times(key, e)
        _check_key(result, self.scale)
        return result


def _accumulate(out: dict, items) -> None:
    """Add monomials into ``out``, dropping the ones that cancel."""
    for k, v in items:
        total = _c_add(out[k], v) if k in out else v
        if total == 0:
            out.pop(k, None)
        else:
            out[k] = total


# ------------------------------------------------------------------------ API


def _fraction(x) -> Fraction:
    if isinstance(x, Fraction):
        return x
    if isinstance(x, sympy.Rational):
        return Fraction(int(x.p), int(x.q))
    return Fraction(x)


def format_monomial(key: Sequence, variables: Sequence[sympy.Symbol]) -> str:
    """Exponents ``(1, 2, 0)`` over (N, D, M) -> ``N*D^2``; the zero vector -> ``1``."""
    parts = []
    for var, power in zip(variables, key):
        power = _fraction(power)
        if power == 0:
            continue
        if power == 1:
            parts.append(str(var))
        elif power.denominator == 1:
            parts.append(f"{var}^{power}")
        else:
            parts.append(f"{var}^({power})")
    return "*".join(parts) if parts else "1"


def _order_variables(exprs, variables: Sequence[sympy.Symbol] | None) -> list:
    free = set()
    for e in exprs:
        free |= e.free_symbols
    ordered = [v for v in (variables or []) if v in free]
    ordered += sorted((v for v in free if v not in ordered), key=str)
    return ordered


def _budget_for(scale: int) -> _Budget:
    return _Budget(MAX_WORK, 1 + scale.bit_length() // 32)


def _exponents(key: Key, scale: int) -> tuple[Fraction, ...]:
    return tuple(Fraction(x, scale) for x in key)


def _analyse(expr, variables: list, scale: int, budget: _Budget) -> list[Key]:
    """The dominant keys of ``expr``, largest first; BigOError if it cannot be compared."""
    with mpmath.workdps(_DPS):
        prune = _all_coefficients_positive(expr)
        terms = _Expander(variables, scale, budget, prune).terms(expr)
    if not terms:
        raise BigOError("the expression is 0")
    dominant = _dominant(terms, budget)
    negative = [k for k in dominant if terms[k] < 0]
    if negative:
        raise BigOError("the expression becomes negative for large sizes (its term "
                        f"{format_monomial(_exponents(negative[0], scale), variables)} has a "
                        "negative coefficient)")
    return sorted(dominant, key=lambda k: (-sum(k), [-x for x in k]))


def big_o_terms(expr: sympy.Expr, variables: Sequence[sympy.Symbol] | None = None) -> list[sympy.Expr]:
    """The dominant monomials of a big-O expression (coefficients dropped), largest first."""
    ordered = _order_variables([expr], variables)
    scale = _common_scale([expr])
    keys = _analyse(expr, ordered, scale, _budget_for(scale))
    return [sympy.Mul(*[v ** sympy.Rational(p.numerator, p.denominator)
                        for v, p in zip(ordered, _exponents(k, scale))])
            for k in keys]


def _words(names: Sequence[str], joiner: str = "and") -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {joiner} " + names[-1]


MAX_SHOWN_TERMS = 12


def _sum_text(terms: Sequence[str]) -> str:
    """``A + B + C``; a long list is cut (an answer may have hundreds of dominant terms)."""
    if len(terms) <= MAX_SHOWN_TERMS:
        return " + ".join(terms)
    return " + ".join(terms[:MAX_SHOWN_TERMS]) + f" + ... ({len(terms) - MAX_SHOWN_TERMS} more terms)"


def _in_sizes(sizes: Sequence[str], joiner: str = "and", otherwise: str = "as some sizes grow") -> str:
    """Where a growth rate differs: in named sizes (each growing alone), else vaguely."""
    return f"in {_words(sizes, joiner)}" if sizes else otherwise


@dataclass
class BigOComparison:
    """The result of comparing two big-O answers (monomials and sizes as display strings)."""

    equivalent: bool
    student_terms: list[str]
    expected_terms: list[str]
    grows_faster: list[str] = field(default_factory=list)   # student terms the expected class does not bound
    misses: int = 0                                           # expected terms the student's class does not bound
    # sizes of the student's own answer that, growing alone, make it larger / smaller than
    # the expected cost (sizes it does not use are never named: that would hint at the answer)
    faster_in: list[str] = field(default_factory=list)
    slower_in: list[str] = field(default_factory=list)

    def relation(self) -> str:
        """``equivalent``; ``faster`` (an upper bound, not tight); ``slower``; ``incomparable``."""
        if self.equivalent:
            return "equivalent"
        if self.grows_faster and self.misses:
            return "incomparable"
        if self.grows_faster:
            return "faster"
        if self.misses:
            return "slower"
        return "different"   # two classes that bound each other are equal: not expected

    def student_detail(self) -> str:
        """Student-safe diagnostics: the student's own terms, and which of its own sizes make it
        grow too fast or too slowly (never the expected terms, nor sizes it does not use). One
        direction only, unless the two classes are incomparable, which is then said as such."""
        first = f"your answer grows like {_sum_text(self.student_terms)}"
        relation = self.relation()
        if relation == "equivalent":
            return first
        if relation == "faster":
            which = ""
            if len(self.grows_faster) < len(self.student_terms):
                verb = "grows" if len(self.grows_faster) == 1 else "grow"
                which = f" ({_words(self.grows_faster[:MAX_SHOWN_TERMS])} {verb} too fast)"
            return (f"{first}; it grows faster than the expected cost {_in_sizes(self.faster_in)}"
                    f"{which}: an upper bound, but not a tight one")
        if relation == "slower":
            return (f"{first}; it grows more slowly than the expected cost "
                    f"{_in_sizes(self.slower_in, 'or')}: a dominant term of the expected cost is missing")
        if relation == "incomparable":
            return f"{first}; neither bounds the other: {self._incomparable()}"
        return f"{first}; not the same class as the expected cost"

    def _incomparable(self) -> str:
        if not (self.faster_in or self.slower_in):
            return "it is larger than the expected cost in some directions and smaller in others"
        note = " (one size growing, the others fixed)"
        faster = _in_sizes(self.faster_in)
        slower = _in_sizes(self.slower_in, "or", "as other sizes grow")
        if self.slower_in:
            return f"it grows faster {faster} but more slowly {slower}{note}"
        return f"it grows faster {faster}{note} but more slowly {slower}"

    def full_detail(self) -> str:
        """Both sides (reveals the expected terms: staff only)."""
        verb = "equivalent" if self.equivalent else f"not equivalent ({self.relation()})"
        return (f"{verb}: your answer grows like {', '.join(self.student_terms)}; "
                f"expected terms {', '.join(self.expected_terms)}")


def _degree(keys: Sequence[Key], j: int) -> int:
    """Growth exponent (scaled) in variable j alone, the others fixed: its largest exponent."""
    return max(k[j] for k in keys)


def compare_big_o(student: sympy.Expr, expected: sympy.Expr,
                  variables: Sequence[sympy.Symbol] | None = None) -> BigOComparison:
    """Compare asymptotic classes, every variable -> infinity independently.

    Raises :class:`BigOError` (student-readable) when either side cannot be analysed or is
    too complex to compare within the caps of the module docstring.
    """
    ordered = _order_variables([student, expected], variables)
    scale = _common_scale([student, expected])
    budget = _budget_for(scale)
    s_keys = _analyse(student, ordered, scale, budget)
    e_keys = _analyse(expected, ordered, scale, budget)
    grows_faster = [k for k in s_keys if not _hull_dominates(e_keys, k, budget)]
    misses = [k for k in e_keys if not _hull_dominates(s_keys, k, budget)]
    used = [j for j in range(len(ordered)) if any(k[j] for k in s_keys)]

    def text(keys):
        return [format_monomial(_exponents(k, scale), ordered) for k in keys]

    return BigOComparison(
        equivalent=set(s_keys) == set(e_keys),
        student_terms=text(s_keys),
        expected_terms=text(e_keys),
        grows_faster=text(grows_faster),
        misses=len(misses),
        faster_in=[str(ordered[j]) for j in used if _degree(s_keys, j) > _degree(e_keys, j)],
        slower_in=[str(ordered[j]) for j in used if _degree(s_keys, j) < _degree(e_keys, j)],
    )


def big_o_equivalent(student: sympy.Expr, expected: sympy.Expr,
                     variables: Sequence[sympy.Symbol] | None = None) -> tuple[bool, str]:
    """Same asymptotic class? The detail names the dominant terms of both sides, e.g.
    ``your answer grows like N^2*D; expected terms N*D, M*D``."""
    try:
        cmp = compare_big_o(student, expected, variables)
    except BigOError as exc:
        return False, str(exc)
    if cmp.equivalent:
        return True, f"both grow like {', '.join(cmp.student_terms)}"
    return False, (f"your answer grows like {', '.join(cmp.student_terms)}; "
                   f"expected terms {', '.join(cmp.expected_terms)}")
