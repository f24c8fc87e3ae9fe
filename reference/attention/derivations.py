"""The derivations of CS182 HW10 (kernelized linear attention), machine-checked with sympy.

Staff-side, trusted code. Expressions are built directly (no ``sympify`` of strings). Each
``*_identity`` / ``*_check`` function returns a bool that the test suite asserts; the other
functions return the sympy objects so that a staff report can print them.

Notably :func:`random_feature_derivation` shows the handout's discrepancy: with
w_i ~ N(0, sigma^2 I), as the course text states, E[phi(q).phi(k)] = exp(-sigma^2 |q-k|^2 / 2),
not the Gaussian kernel exp(-|q-k|^2 / (2 sigma^2)); the kernel needs w_i ~ N(0, sigma^-2 I).
:func:`monte_carlo_random_feature_kernel` shows the same numerically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import sympy
from sympy import Matrix, Rational, Symbol, cos, exp, oo, pi, sin, sqrt

from grader.symbolic import BigO, big_o_terms, compare_big_o

# Scalars standing for the vector quantities: |q|^2, |k|^2, q.k and |q - k|^2.
qq = Symbol("|q|^2", positive=True)
kk = Symbol("|k|^2", positive=True)
qk = Symbol("q.k", real=True)
dist2 = Symbol("|q-k|^2", nonnegative=True)
sigma = Symbol("sigma", positive=True)
D = Symbol("D", positive=True)

# Sizes for the cost answers.
N = Symbol("N", positive=True)
M = Symbol("M", positive=True)
D_random = Symbol("D_random", positive=True)
COST_VARIABLES = [N, D_random, D, M]


def _is_zero(expr) -> bool:
    return sympy.simplify(expr) == 0


# ---------------------------------------------------------------- Part II(a)


def softmax_gaussian_identity() -> bool:
    """exp(q.k/sqrt(D)) == exp(|q|^2/(2 s^2)) exp(-|q-k|^2/(2 s^2)) exp(|k|^2/(2 s^2)), s^2 = sqrt(D)."""
    sigma2 = sqrt(D)
    q_minus_k = qq - 2 * qk + kk
    lhs = exp(qk / sqrt(D))
    rhs = exp(qq / (2 * sigma2)) * exp(-q_minus_k / (2 * sigma2)) * exp(kk / (2 * sigma2))
    combined = sympy.powsimp(rhs)          # exp(sum of the three exponents)
    return (_is_zero(lhs - rhs) and combined.func is exp
            and sympy.expand(combined.args[0] - qk / sqrt(D)) == 0)


# ---------------------------------------------------------------- Part II(b)

_w = Symbol("w", real=True)
_u = Symbol("u", real=True)
_v = Symbol("v", positive=True)


def gaussian_density(w, variance):
    return exp(-w**2 / (2 * variance)) / sqrt(2 * pi * variance)


def gaussian_cos_expectation(u=_u, variance=_v):
    """E_w[cos(w u)] for w ~ N(0, variance), by integrating over the real line."""
    return sympy.integrate(cos(_w * u) * gaussian_density(_w, variance), (_w, -oo, oo))


def gaussian_sin_expectation(u=_u, variance=_v):
    """E_w[sin(w u)] for w ~ N(0, variance): 0 (an odd integrand)."""
    return sympy.integrate(sin(_w * u) * gaussian_density(_w, variance), (_w, -oo, oo))


def cos_expectation_identity() -> bool:
    """E[cos(w u)] == exp(-v u^2/2) and E[sin(w u)] == 0 for w ~ N(0, v)."""
    return (_is_zero(gaussian_cos_expectation() - exp(-_v * _u**2 / 2))
            and _is_zero(gaussian_sin_expectation()))


def sin_cos_product_identity() -> bool:
    """sin(a) sin(b) + cos(a) cos(b) == cos(a - b)."""
    a, b = sympy.symbols("a b", real=True)
    return _is_zero(sympy.expand_trig(sin(a) * sin(b) + cos(a) * cos(b) - cos(a - b)))


def random_feature_expectation(variance, dim: int = 2):
    """E[phi(q).phi(k)] for w ~ N(0, variance I) in ``dim`` dimensions, derived per coordinate.

    phi(q).phi(k) = (1/D_random) sum_i [sin(w_i.q) sin(w_i.k) + cos(w_i.q) cos(w_i.k)]
                  = (1/D_random) sum_i cos(w_i.(q - k))     (sin/cos product identity)
    so the expectation is E[cos(w.u)] with u = q - k. Expanding cos of the sum w_1 u_1 + ...
    coordinate by coordinate, independence factorises every term and each contains
    E[sin(w_j u_j)] = 0 except the product of cosines: E[cos(w.u)] = prod_j E[cos(w_j u_j)].
    Returned with |u|^2 written as the symbol ``|q-k|^2``.
    """
    us = sympy.symbols(f"u1:{dim + 1}", real=True)
    ws = sympy.symbols(f"w1:{dim + 1}", real=True)
    total = sympy.expand_trig(cos(sum(w * u for w, u in zip(ws, us))))
    total = sympy.expand(total)
    cos_e = {w: gaussian_cos_expectation(u, variance) for w, u in zip(ws, us)}
    sin_e = {w: gaussian_sin_expectation(u, variance) for w, u in zip(ws, us)}
    # every term is a product of one sin or cos per coordinate: take expectations factor by factor
    expectation = sympy.Integer(0)
    for term in sympy.Add.make_args(total):
        value = sympy.Integer(1)
        for factor in sympy.Mul.make_args(term):
            if factor.func is cos and factor.args[0].free_symbols & set(ws):
                w = next(iter(factor.args[0].free_symbols & set(ws)))
                value *= cos_e[w]
            elif factor.func is sin and factor.args[0].free_symbols & set(ws):
                w = next(iter(factor.args[0].free_symbols & set(ws)))
                value *= sin_e[w]
            else:
                value *= factor
        expectation += value
    expectation = sympy.powsimp(sympy.simplify(expectation))
    return sympy.simplify(expectation.subs(sum(u**2 for u in us), dist2).subs(
        sympy.expand(sum(u**2 for u in us)), dist2))


def gaussian_kernel():
    """K_gauss(q, k) = exp(-|q - k|^2 / (2 sigma^2))."""
    return exp(-dist2 / (2 * sigma**2))


@dataclass
class RandomFeatureDerivation:
    gaussian_kernel: sympy.Expr            # exp(-|q-k|^2/(2 sigma^2))
    with_inverse_variance: sympy.Expr      # E[phi(q).phi(k)] for w ~ N(0, sigma^-2 I)
    with_handout_variance: sympy.Expr      # E[phi(q).phi(k)] for w ~ N(0, sigma^2 I) (the handout)
    required_variance: sympy.Expr          # the v solving E[...] == K_gauss: 1/sigma^2
    inverse_variance_matches: bool
    handout_variance_matches: bool

    def report(self) -> str:
        return "\n".join([
            "Random features phi(x) = sqrt(1/D_random) [sin(w_i.x), cos(w_i.x)]:",
            f"  Gaussian kernel K_gauss(q, k)            = {self.gaussian_kernel}",
            f"  E[phi(q).phi(k)], w ~ N(0, sigma^-2 I)   = {self.with_inverse_variance}"
            f"   (matches: {self.inverse_variance_matches})",
            f"  E[phi(q).phi(k)], w ~ N(0, sigma^2 I)    = {self.with_handout_variance}"
            f"   (matches: {self.handout_variance_matches}; this is the handout's statement)",
            f"  variance that gives the kernel           = {self.required_variance}",
        ])


def random_feature_derivation() -> RandomFeatureDerivation:
    general = random_feature_expectation(_v)           # exp(-v |q-k|^2 / 2)
    kernel = gaussian_kernel()
    inverse = sympy.simplify(general.subs(_v, 1 / sigma**2))
    handout = sympy.simplify(general.subs(_v, sigma**2))
    # exponents must agree for every |q-k|^2: solve for v
    solutions = sympy.solve(sympy.Eq(sympy.log(general).expand(force=True),
                                     sympy.log(kernel).expand(force=True)), _v)
    required = solutions[0] if len(solutions) == 1 else sympy.nan
    return RandomFeatureDerivation(
        gaussian_kernel=kernel,
        with_inverse_variance=inverse,
        with_handout_variance=handout,
        required_variance=required,
        inverse_variance_matches=_is_zero(inverse - kernel),
        handout_variance_matches=_is_zero(handout - kernel),
    )


def random_feature_expectation_identity() -> bool:
    """E[phi(q).phi(k)] == exp(-v |q-k|^2/2); the kernel iff v == 1/sigma^2 (not sigma^2)."""
    general = random_feature_expectation(_v)
    d = random_feature_derivation()
    return (_is_zero(general - exp(-_v * dist2 / 2))
            and d.inverse_variance_matches and not d.handout_variance_matches
            and _is_zero(d.required_variance - 1 / sigma**2))


def monte_carlo_random_feature_kernel(q, k, variance: float, d_random: int = 100_000, seed: int = 0) -> float:
    """phi(q).phi(k) with w_i ~ N(0, variance I), by sampling (numpy; for the staff report)."""
    import numpy as np

    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, np.sqrt(variance), size=(d_random, q.shape[-1]))

    def phi(x):
        wx = W @ x
        return np.concatenate([np.sin(wx), np.cos(wx)]) / np.sqrt(d_random)

    return float(phi(q) @ phi(k))


# ---------------------------------------------------------------- Part II(c)


def softmax_feature_scale():
    """f(x) = exp(|x|^2 / (2 sigma^2)), written for x = q."""
    return exp(qq / (2 * sigma**2))


def softmax_feature_map_identity() -> bool:
    """f(q) f(k) K_gauss(q, k) == exp(q.k / sigma^2) with f(x) = exp(|x|^2/(2 sigma^2))."""
    k_gauss = exp(-(qq - 2 * qk + kk) / (2 * sigma**2))
    scaled = exp(qq / (2 * sigma**2)) * exp(kk / (2 * sigma**2)) * k_gauss
    return _is_zero(scaled - exp(qk / sigma**2))


# ---------------------------------------------------------------- Part II(e)


def causal_recurrence_check(n: int = 3, f: int = 2, m: int = 2) -> bool:
    """With explicit symbolic matrices: the recurrences for S_i and Z_i give the prefix sums,
    and phi(Q_i) S_i / (phi(Q_i) Z_i) equals the masked quadratic formula."""
    phi_q = Matrix(n, f, sympy.symbols(f"a0:{n * f}", positive=True))
    phi_k = Matrix(n, f, sympy.symbols(f"b0:{n * f}", positive=True))
    V = Matrix(n, m, sympy.symbols(f"c0:{n * m}", real=True))
    # masked quadratic form: A = phi(Q) phi(K)^T, keep j <= i, normalise the rows
    A = phi_q * phi_k.T
    mask = Matrix(n, n, lambda i, j: 1 if j <= i else 0)
    masked = A.multiply_elementwise(mask)
    numerators = masked * V
    denominators = masked * sympy.ones(n, 1)

    S = sympy.zeros(f, m)
    Z = sympy.zeros(f, 1)
    for i in range(n):
        S = S + phi_k[i, :].T * V[i, :]
        Z = Z + phi_k[i, :].T
        prefix_S = sum((phi_k[j, :].T * V[j, :] for j in range(i + 1)), sympy.zeros(f, m))
        prefix_Z = sum((phi_k[j, :].T for j in range(i + 1)), sympy.zeros(f, 1))
        if (S - prefix_S).expand() != sympy.zeros(f, m) or (Z - prefix_Z).expand() != sympy.zeros(f, 1):
            return False
        den = (phi_q[i, :] * Z)[0, 0]
        out = phi_q[i, :] * S / den
        for col in range(m):
            # a/b == c/d  <=>  a d - c b == 0 (all denominators are positive)
            lhs_num, lhs_den = sympy.fraction(sympy.together(out[0, col]))
            rhs_num, rhs_den = numerators[i, col], denominators[i, 0]
            if sympy.expand(lhs_num * rhs_den - rhs_num * lhs_den) != 0:
                return False
        # and the explicit sum form sum_{j<=i} (phi(Q_i).phi(K_j)) V_j / sum_{j<=i} phi(Q_i).phi(K_j)
        weights = [(phi_q[i, :] * phi_k[j, :].T)[0, 0] for j in range(i + 1)]
        explicit = sum((w * V[j, :] for j, w in enumerate(weights)), sympy.zeros(1, m)) / sum(weights)
        if any(sympy.cancel(out[0, c] - explicit[0, c]) != 0 for c in range(m)):
            return False
    return True


# ---------------------------------------------------------------- costs


def random_feature_cost_counts() -> dict[str, sympy.Expr]:
    """Multiply-adds of non-causal kernelized attention with phi_random (feature dim 2 D_random)."""
    F = 2 * D_random
    return {
        "W x for all queries and keys": 2 * N * D_random * D,
        "sin and cos of W x": 2 * N * F,
        "S = sum_j phi(K_j)^T V_j": N * F * M,
        "Z = sum_j phi(K_j)^T": N * F,
        "numerators phi(Q_i) S": N * F * M,
        "denominators phi(Q_i) Z": N * F,
        "divisions": N * M,
    }


def causal_cost_counts() -> dict[str, sympy.Expr]:
    """The same work done step by step with the recurrences: per step i, one rank-1 update of
    S (F*M) and Z (F), one numerator (F*M), one denominator (F) and M divisions."""
    F = 2 * D_random
    per_step = F * M + F + F * M + F + M
    return {
        "W x for all queries and keys": 2 * N * D_random * D,
        "sin and cos of W x": 2 * N * F,
        "N recurrence steps": N * per_step,
    }


def polynomial_feature_dim():
    """Dimension of phi(x) = vec(a a^T), a = (1, x): (D + 1)^2."""
    return (D + 1)**2


def polynomial_feature_map_check(d: int = 3) -> bool:
    """For a = (1, x), phi(x) = all a_i a_j: phi(q).phi(k) == (1 + q.k)^2 and len(phi) == (d+1)^2."""
    q = sympy.symbols(f"q1:{d + 1}", real=True)
    k = sympy.symbols(f"k1:{d + 1}", real=True)

    def phi(x):
        a = (sympy.Integer(1),) + tuple(x)
        return [ai * aj for ai in a for aj in a]

    pq, pk = phi(q), phi(k)
    dot = sum(x * y for x, y in zip(pq, pk))
    target = (1 + sum(x * y for x, y in zip(q, k)))**2
    return sympy.expand(dot - target) == 0 and len(pq) == polynomial_feature_dim().subs(D, d)


def polynomial_cost_counts() -> dict[str, sympy.Expr]:
    F = polynomial_feature_dim()
    return {
        "features of all queries and keys": 2 * N * F,
        "S = sum_j phi(K_j)^T V_j": N * F * M,
        "Z = sum_j phi(K_j)^T": N * F,
        "numerators phi(Q_i) S": N * F * M,
        "denominators phi(Q_i) Z": N * F,
        "divisions": N * M,
    }


def _total(counts: dict[str, sympy.Expr]) -> sympy.Expr:
    return sympy.Add(*counts.values())


def cost_classes() -> dict[str, list[sympy.Expr]]:
    """Dominant terms of each counted cost (coefficients dropped)."""
    return {
        "random_feature_cost": big_o_terms(_total(random_feature_cost_counts()), COST_VARIABLES),
        "causal_cost": big_o_terms(_total(causal_cost_counts()), COST_VARIABLES),
        "polynomial_cost": big_o_terms(_total(polynomial_cost_counts()), [N, D, M]),
    }


def random_feature_cost_check() -> bool:
    total = _total(random_feature_cost_counts())
    return compare_big_o(total, BigO(N * D_random * (D + M)), COST_VARIABLES).equivalent


def causal_cost_check() -> bool:
    """Same class as the non-causal cost, and linear in N (every dominant term has N^1)."""
    total = _total(causal_cost_counts())
    linear = all(sympy.degree(t, N) == 1 for t in big_o_terms(total, COST_VARIABLES))
    return linear and compare_big_o(total, BigO(N * D_random * (D + M)), COST_VARIABLES).equivalent


def polynomial_cost_check() -> bool:
    total = _total(polynomial_cost_counts())
    return compare_big_o(total, BigO(N * D**2 * M), [N, D, M]).equivalent


# ---------------------------------------------------------------- staff answers

#: The staff answers in the answers-file syntax, one per question of
#: assignments/linear_attention/questions.py.
REFERENCE_ANSWERS: dict[str, str] = {
    "softmax_gaussian": "exp(norm(q)^2/(2*sigma^2)) * K_gauss(q, k) * exp(norm(k)^2/(2*sigma^2))",
    "random_feature_variance": "1/sigma^2",
    "softmax_feature_scale": "exp(norm(x)^2/(2*sigma^2))",
    "random_feature_cost": "O(N*D_random*(D + M))",
    "causal_S_recurrence": "S_prev + T(phi_K_i)*V_i",
    "causal_Z_recurrence": "Z_prev + T(phi_K_i)",
    "causal_output": "(phi_Q_i*S_i) / (phi_Q_i*Z_i)",
    "causal_cost": "O(N*D_random*(D + M))",
    "polynomial_feature_dim": "(D + 1)^2",
    "polynomial_cost": "O(N*D^2*M)",
}


def reference_answers_toml() -> str:
    """REFERENCE_ANSWERS as an answers.toml (JSON string escapes are valid TOML basic strings)."""
    lines = ["# Staff answers (reference/attention/derivations.py REFERENCE_ANSWERS)."]
    lines += [f"{key} = {json.dumps(value)}" for key, value in REFERENCE_ANSWERS.items()]
    return "\n".join(lines) + "\n"


def all_checks() -> dict[str, bool]:
    """Every machine-checked step, by name (for the staff report and the tests)."""
    return {
        "softmax_gaussian_identity": softmax_gaussian_identity(),
        "cos_expectation_identity": cos_expectation_identity(),
        "sin_cos_product_identity": sin_cos_product_identity(),
        "random_feature_expectation_identity": random_feature_expectation_identity(),
        "softmax_feature_map_identity": softmax_feature_map_identity(),
        "causal_recurrence_check": causal_recurrence_check(),
        "polynomial_feature_map_check": polynomial_feature_map_check(),
        "random_feature_cost_check": random_feature_cost_check(),
        "causal_cost_check": causal_cost_check(),
        "polynomial_cost_check": polynomial_cost_check(),
    }


if __name__ == "__main__":  # staff report
    for name, ok in all_checks().items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(random_feature_derivation().report())
    print("Monte Carlo, q=(1,0), k=(0,1), sigma^2=2:",
          "v=1/sigma^2 ->", round(monte_carlo_random_feature_kernel([1, 0], [0, 1], 0.5), 4),
          "(kernel", round(float(sympy.exp(-Rational(2) / 4)), 4), ");",
          "v=sigma^2 ->", round(monte_carlo_random_feature_kernel([1, 0], [0, 1], 2.0), 4),
          "(handout", round(float(sympy.exp(-Rational(2) * 2 / 2)), 4), ")")
