"""Symbolic questions of the kernelized linear attention homework (CS182 HW10, parts I and II).

Students answer them in ``answers.toml`` (format: ``grader/symbolic/answers.py`` and
``ANSWERS.md`` next to this file). How the names are given meaning when checking:

* Vectors (``q``, ``k``, ``x``) are abstract: they are known only through the scalars
  ``|q|^2``, ``|k|^2`` (positive) and ``q.k`` (real). ``norm(q) = sqrt(|q|^2)``,
  ``dot(q, k) = q.k`` and ``K_gauss(q, k) := exp(-(|q|^2 - 2 q.k + |k|^2) / (2 sigma^2))``.
  In ``softmax_gaussian`` vectors may only be passed to ``norm``/``K_gauss`` (no ``dot``, no
  ``q - k``), and the answer must use ``K_gauss``: otherwise restating the left-hand side
  ``exp(dot(q, k)/sqrt(D))`` would count. ``sigma`` is replaced by ``D^(1/4)`` there
  (sigma^2 = sqrt(D)), so answers may use either.
* Matrices are ``MatrixSymbol`` s with symbolic sizes F (feature dimension) and M (value
  dimension); ``*`` is the matrix product with shapes checked, ``T(A)`` the transpose,
  and dividing by the 1x1 matrix ``phi_Q_i*Z_i`` (or ``scalar(...)`` of it) divides by its
  entry. Checked with random exact rational matrices of sizes F = 4, M = 3.
* Big-O answers compare asymptotic classes with every size -> infinity independently.
* The polynomial feature map is pinned to the flattened outer product of a = (1, x): its
  dimension is (D + 1)^2 (other valid maps have other sizes; the prompt says which one).
"""
from __future__ import annotations

import sympy

from grader.symbolic import (
    BigO,
    FunctionSpec,
    Question,
    VectorSpace,
    Vocabulary,
    matrix_vocabulary_functions,
)

# ----------------------------------------------------------------- vocabularies

sigma = sympy.Symbol("sigma", positive=True)
D = sympy.Symbol("D", positive=True)
N = sympy.Symbol("N", positive=True)
M = sympy.Symbol("M", positive=True)
D_random = sympy.Symbol("D_random", positive=True)

_qk = VectorSpace(["q", "k"], allow_arithmetic=False)
SOFTMAX_GAUSSIAN_VOCAB = Vocabulary(
    {
        "q": _qk.vectors["q"],
        "k": _qk.vectors["k"],
        "norm": _qk.norm_function(),
        "K_gauss": _qk.gaussian_kernel_function(sigma),
        "sigma": sigma,
        "D": D,
    },
    substitutions={sigma: D ** sympy.Rational(1, 4)},   # sigma^2 = sqrt(D)
)

SIGMA_VOCAB = Vocabulary({"sigma": sigma})

_x = VectorSpace(["x"])
FEATURE_SCALE_VOCAB = Vocabulary(
    {"x": _x.vectors["x"], "norm": _x.norm_function(), "dot": _x.dot_function(), "sigma": sigma}
)

_BIG_O = FunctionSpec(BigO, ("scalar",), "O(expression)", "big-O")
COST_VOCAB = Vocabulary(
    {"N": N, "D": D, "M": M, "D_random": D_random, "O": _BIG_O},
    variables=[N, D_random, D, M],
)
POLY_COST_VOCAB = Vocabulary({"N": N, "D": D, "M": M, "O": _BIG_O}, variables=[N, D, M])
POLY_DIM_VOCAB = Vocabulary({"D": D})

# matrix sizes: F = feature dimension, Mv = value dimension (printed as M)
F_dim = sympy.Symbol("F", integer=True, positive=True)
M_dim = sympy.Symbol("M", integer=True, positive=True)
MATRIX_DIMS = {F_dim: 4, M_dim: 3}

RECURRENCE_VOCAB = Vocabulary(
    {
        "S_prev": sympy.MatrixSymbol("S_prev", F_dim, M_dim),
        "Z_prev": sympy.MatrixSymbol("Z_prev", F_dim, 1),
        "phi_K_i": sympy.MatrixSymbol("phi_K_i", 1, F_dim),
        "V_i": sympy.MatrixSymbol("V_i", 1, M_dim),
        **matrix_vocabulary_functions(),
    },
    matrix_dims=MATRIX_DIMS,
)
OUTPUT_VOCAB = Vocabulary(
    {
        "phi_Q_i": sympy.MatrixSymbol("phi_Q_i", 1, F_dim),
        "S_i": sympy.MatrixSymbol("S_i", F_dim, M_dim),
        "Z_i": sympy.MatrixSymbol("Z_i", F_dim, 1),
        **matrix_vocabulary_functions(),
    },
    matrix_dims=MATRIX_DIMS,
)

_CAUSAL_SETUP = (
    "Causal kernelized attention with a feature map phi of dimension F: phi(K_j) is a 1 x F row,\n"
    "V_j a 1 x M row, S_i = sum_{j<=i} T(phi(K_j)) * V_j is F x M and Z_i = sum_{j<=i} T(phi(K_j))\n"
    "is F x 1. In matrix answers * is the matrix product and T(A) the transpose.\n"
)

# ------------------------------------------------------------------- questions

QUESTIONS = [
    Question(
        id="softmax_gaussian",
        kind="expression",
        points=2,
        expected="exp(norm(q)^2/(2*sigma^2)) * K_gauss(q, k) * exp(norm(k)^2/(2*sigma^2))",
        vocabulary=SOFTMAX_GAUSSIAN_VOCAB,
        requires=("K_gauss",),
        prompt=(
            "Part II(a). Write the softmax similarity exp(q.k/sqrt(D)) in terms of the Gaussian kernel\n"
            "K_gauss(q, k) = exp(-norm(q - k)^2/(2*sigma^2)), assuming sigma^2 = sqrt(D).\n"
            "Allowed names: q, k, norm(v), K_gauss(u, v), sigma, D. Your answer must use K_gauss(q, k);\n"
            "vectors may only appear inside norm(...) and K_gauss(...)."
        ),
    ),
    Question(
        id="random_feature_variance",
        kind="expression",
        points=2,
        expected="1/sigma^2",
        vocabulary=SIGMA_VOCAB,
        prompt=(
            "Part II(b). phi_random(x) = sqrt(1/D_random) [sin(w_1.x), ..., sin(w_D_random.x),\n"
            "cos(w_1.x), ..., cos(w_D_random.x)], where every entry of every w_i is drawn independently\n"
            "from N(0, v). Which variance v makes E[phi_random(q).phi_random(k)] equal the Gaussian kernel\n"
            "K_gauss(q, k) = exp(-norm(q - k)^2/(2*sigma^2)) exactly? Allowed names: sigma."
        ),
    ),
    Question(
        id="softmax_feature_scale",
        kind="expression",
        points=1,
        expected="exp(norm(x)^2/(2*sigma^2))",
        vocabulary=FEATURE_SCALE_VOCAB,
        prompt=(
            "Part II(c). Give the positive scalar factor f(x) such that f(x)*phi_random(x) approximates the\n"
            "softmax kernel, i.e. f(q)*f(k)*K_gauss(q, k) = exp(dot(q, k)/sigma^2).\n"
            "Allowed names: x, norm(v), dot(u, v), sigma."
        ),
    ),
    Question(
        id="random_feature_cost",
        kind="big_o",
        points=1,
        expected="O(N*D_random*(D + M))",
        vocabulary=COST_VOCAB,
        prompt=(
            "Part II(d). Big-O cost of computing all N outputs of (non-causal) kernelized attention with\n"
            "phi_random (D_random random vectors w_i in D dimensions), queries and keys of dimension D,\n"
            "values of dimension M, including computing the features.\n"
            "Allowed names: N, D, M, D_random, O(...)."
        ),
    ),
    Question(
        id="causal_S_recurrence",
        kind="matrix",
        points=1,
        expected="S_prev + T(phi_K_i)*V_i",
        vocabulary=RECURRENCE_VOCAB,
        prompt=(
            "Part II(e). " + _CAUSAL_SETUP +
            "Write S_i in terms of S_prev = S_{i-1}, phi_K_i = phi(K_i) (1 x F) and V_i (1 x M).\n"
            "Allowed names: S_prev, Z_prev, phi_K_i, V_i, T(A), scalar(A)."
        ),
    ),
    Question(
        id="causal_Z_recurrence",
        kind="matrix",
        points=1,
        expected="Z_prev + T(phi_K_i)",
        vocabulary=RECURRENCE_VOCAB,
        prompt=(
            "Part II(e). Write Z_i (F x 1) in terms of Z_prev = Z_{i-1} and phi_K_i = phi(K_i) (1 x F).\n"
            "Allowed names: S_prev, Z_prev, phi_K_i, V_i, T(A), scalar(A)."
        ),
    ),
    Question(
        id="causal_output",
        kind="matrix",
        points=2,
        expected="(phi_Q_i*S_i) / (phi_Q_i*Z_i)",
        vocabulary=OUTPUT_VOCAB,
        prompt=(
            "Part II(e). Write the causal output V'_i (a 1 x M row) in terms of phi_Q_i = phi(Q_i) (1 x F),\n"
            "S_i (F x M) and Z_i (F x 1). A 1 x 1 matrix may be divided by directly, or turned into a\n"
            "number with scalar(A). Allowed names: phi_Q_i, S_i, Z_i, T(A), scalar(A)."
        ),
    ),
    Question(
        id="causal_cost",
        kind="big_o",
        points=1,
        expected="O(N*D_random*D + N*D_random*M)",
        vocabulary=COST_VOCAB,
        prompt=(
            "Part II(f). Big-O cost of computing all N causal outputs V'_1, ..., V'_N with the recurrences\n"
            "for S_i and Z_i, using phi_random (feature dimension 2*D_random), including computing the\n"
            "features. Allowed names: N, D, M, D_random, O(...)."
        ),
    ),
    Question(
        id="polynomial_feature_dim",
        kind="expression",
        points=1,
        expected="(D + 1)^2",
        vocabulary=POLY_DIM_VOCAB,
        prompt=(
            "Part I. For the degree-2 polynomial kernel (1 + q.k)^2 take the feature map phi(x) that lists\n"
            "all products a_i*a_j over ordered pairs (i, j) of the entries of a = (1, x_1, ..., x_D),\n"
            "so that phi(q).phi(k) = (1 + q.k)^2. How many entries does phi(x) have?\n"
            "Allowed names: D."
        ),
    ),
    Question(
        id="polynomial_cost",
        kind="big_o",
        points=1,
        expected="O(N*D^2*M)",
        vocabulary=POLY_COST_VOCAB,
        prompt=(
            "Part I. Big-O cost of computing all N outputs of (non-causal) kernelized attention with that\n"
            "degree-2 polynomial feature map, queries and keys of dimension D and values of dimension M,\n"
            "including computing the features. Allowed names: N, D, M, O(...)."
        ),
    ),
]

QUESTIONS_BY_ID = {q.id: q for q in QUESTIONS}
