"""Kernelized linear attention (CS182 HW10), coding part.

Shapes: queries and keys are [..., N, D], values are [..., N, M]; any leading dims
(batch, heads) must be carried through. A feature map phi sends [..., N, D] to [..., N, F].

Softmax attention weighs value j for query i by exp(q_i.k_j / sqrt(D)). Kernel attention
replaces that similarity by a kernel written as an inner product, sim(q, k) = phi(q).phi(k),
so that by associativity

    V'_i = phi(Q_i) (sum_j phi(K_j)^T V_j) / (phi(Q_i) sum_j phi(K_j)^T)

costs O(N F M) instead of O(N^2 (D + M)). With a causal mask the sums run over j <= i only.

Fill in every function below. Use only `math` and `torch`. Your code must work in float32
and float64 and for any leading dims. The two kernel attention functions must be linear in N:
the grader measures the largest tensor your code creates and rejects an N x N matrix.
"""
import math

import torch


def softmax_attention(Q, K, V, causal=False):
    """Scaled dot-product softmax attention, the quadratic baseline.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M] -> [..., N, M].
    causal: position i attends only to positions j <= i.
    """
    raise NotImplementedError("TODO: softmax(Q K^T / sqrt(D)) V, masking keys j > i when causal")


def polynomial_feature_map(X):
    """Explicit feature map of the degree-2 polynomial kernel (1 + q.k)^2.

    X: [..., N, D] -> [..., N, F] such that phi(q).phi(k) = (1 + q.k)^2 exactly
    (for example F = 1 + D + D^2).
    """
    raise NotImplementedError("TODO: expand (1 + q.k)^2 = 1 + 2 q.k + (q.k)^2 into matching features")


def random_feature_map(X, W):
    """Random Fourier features: phi(x) = sqrt(1/D_random) [sin(W x), cos(W x)].

    X: [..., N, D], W: [D_random, D] -> [..., N, 2*D_random].

    phi(q).phi(k) = (1/D_random) sum_i cos(w_i.(q - k)), an unbiased Monte-Carlo estimate of
    E_w[cos(w.(q - k))]. For it to estimate the Gaussian kernel exp(-|q-k|^2 / (2 sigma^2)),
    the rows w_i of W must be drawn from N(0, sigma^-2 I), i.e. W = torch.randn(D_random, D) / sigma.
    (The course handout says N(0, sigma^2 I); with that variance the estimate converges to
    exp(-sigma^2 |q-k|^2 / 2) instead, which is the Gaussian kernel only when sigma = 1.)
    W is taken as given; drawing it is the caller's job.
    """
    raise NotImplementedError("TODO: project X onto the rows of W, then concatenate sin and cos and scale")


def softmax_kernel_feature_map(X, W, sigma2):
    """Random features whose inner product approximates the softmax similarity exp(q.k / sigma2).

    X: [..., N, D], W: [D_random, D] with rows drawn from N(0, I / sigma2), sigma2 a float
    (sigma2 = sqrt(D) reproduces softmax attention's exp(q.k / sqrt(D))) -> [..., N, 2*D_random].

    Uses exp(q.k / sigma2) = exp(|q|^2 / (2 sigma2)) K_gauss(q, k) exp(|k|^2 / (2 sigma2)), with
    K_gauss(q, k) = exp(-|q-k|^2 / (2 sigma2)) estimated by random_feature_map.
    """
    raise NotImplementedError("TODO: multiply random_feature_map(X, W) by the norm factor of each x")


def kernel_attention(Q, K, V, feature_map):
    """Non-causal kernel attention in time and memory linear in N.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M], feature_map: callable [..., N, D] -> [..., N, F].
    Returns phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1)): [..., N, M].
    """
    raise NotImplementedError("TODO: sum phi(K)^T V and phi(K) over the keys first, then apply phi(Q)")


def causal_kernel_attention(Q, K, V, feature_map):
    """Causal kernel attention, linear in N; must never build an N x N matrix.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M], feature_map: callable [..., N, D] -> [..., N, F].
    Returns V'_i = phi(Q_i) S_i / (phi(Q_i) Z_i) with S_i = sum_{j<=i} phi(K_j)^T V_j and
    Z_i = sum_{j<=i} phi(K_j)^T: [..., N, M].
    """
    raise NotImplementedError("TODO: keep running sums S_i and Z_i over j <= i (token i sees itself)")
