"""Kernelized linear attention (CS182 HW10), staff reference.

Shapes: queries and keys are [..., N, D], values are [..., N, M]; any leading dims
(batch, heads) are carried through. A feature map phi sends [..., N, D] to [..., N, F].

Softmax attention weighs value j for query i by exp(q_i.k_j / sqrt(D)). Kernel attention
replaces that similarity by a kernel written as an inner product, sim(q, k) = phi(q).phi(k),
so that by associativity

    V'_i = phi(Q_i) (sum_j phi(K_j)^T V_j) / (phi(Q_i) sum_j phi(K_j)^T)

costs O(N F M) instead of O(N^2 (D + M)). With a causal mask the sums run over j <= i only.

This module is self-contained (only `math` and `torch`): the grader copies it verbatim as a
student's `linear_attention.py` when it checks itself.
"""
import math

import torch


def softmax_attention(Q, K, V, causal=False):
    """Scaled dot-product softmax attention, the quadratic baseline.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M] -> [..., N, M].
    causal: position i attends only to positions j <= i.
    """
    D = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / math.sqrt(D)  # [..., N, N]
    if causal:
        N = Q.shape[-2]
        # True above the diagonal: key j is in the future of query i (j > i).
        future = torch.triu(torch.ones(N, N, dtype=torch.bool, device=Q.device), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # each query's weights over the keys sum to 1
    return weights @ V  # [..., N, M]


def polynomial_feature_map(X):
    """Explicit feature map of the degree-2 polynomial kernel (1 + q.k)^2.

    X: [..., N, D] -> [..., N, F] with F = 1 + D + D^2, such that
    phi(q).phi(k) = 1 + 2 q.k + (q.k)^2 = (1 + q.k)^2 exactly.
    """
    ones = torch.ones_like(X[..., :1])  # [..., N, 1]: the constant term 1
    linear = math.sqrt(2.0) * X  # [..., N, D]: sqrt(2) x_i, giving the cross term 2 q.k
    quadratic = (X.unsqueeze(-1) * X.unsqueeze(-2)).flatten(-2)  # [..., N, D*D]: x_i x_j, giving (q.k)^2
    return torch.cat([ones, linear, quadratic], dim=-1)  # [..., N, 1 + D + D^2]


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
    D_random = W.shape[0]
    projections = X @ W.transpose(-2, -1)  # [..., N, D_random]: w_i.x for every random direction
    features = torch.cat([torch.sin(projections), torch.cos(projections)], dim=-1)  # [..., N, 2*D_random]
    # sin(a)sin(b) + cos(a)cos(b) = cos(a - b); the scale turns the sum over i into a mean.
    return math.sqrt(1.0 / D_random) * features


def softmax_kernel_feature_map(X, W, sigma2):
    """Random features whose inner product approximates the softmax similarity exp(q.k / sigma2).

    X: [..., N, D], W: [D_random, D] with rows drawn from N(0, I / sigma2), sigma2 a float
    (sigma2 = sqrt(D) reproduces softmax attention's exp(q.k / sqrt(D))) -> [..., N, 2*D_random].

    Uses exp(q.k / sigma2) = exp(|q|^2 / (2 sigma2)) K_gauss(q, k) exp(|k|^2 / (2 sigma2)), with
    K_gauss(q, k) = exp(-|q-k|^2 / (2 sigma2)) estimated by random_feature_map.
    """
    scale = torch.exp(X.pow(2).sum(dim=-1, keepdim=True) / (2 * sigma2))  # [..., N, 1]
    return scale * random_feature_map(X, W)  # [..., N, 2*D_random]


def kernel_attention(Q, K, V, feature_map):
    """Non-causal kernel attention in time and memory linear in N.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M], feature_map: callable [..., N, D] -> [..., N, F].
    Returns phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1)): [..., N, M].
    """
    phi_Q = feature_map(Q)  # [..., N, F]
    phi_K = feature_map(K)  # [..., N, F]
    # Summarise all keys and values once, so no N x N similarity matrix is ever formed.
    S = phi_K.transpose(-2, -1) @ V  # [..., F, M]: sum_j phi(K_j)^T V_j
    Z = phi_K.sum(dim=-2)  # [..., F]: sum_j phi(K_j)
    numerator = phi_Q @ S  # [..., N, M]
    denominator = phi_Q @ Z.unsqueeze(-1)  # [..., N, 1]: the sum over j of sim(Q_i, K_j)
    return numerator / denominator


def causal_kernel_attention(Q, K, V, feature_map, chunk_size=64):
    """Causal kernel attention, chunked: linear in N and never builds an N x N matrix.

    Q: [..., N, D], K: [..., N, D], V: [..., N, M], feature_map: callable [..., N, D] -> [..., N, F].
    Returns V'_i = phi(Q_i) S_i / (phi(Q_i) Z_i) with S_i = sum_{j<=i} phi(K_j)^T V_j and
    Z_i = sum_{j<=i} phi(K_j)^T: [..., N, M].

    The sequence is cut into chunks of C = chunk_size tokens (the last one may be shorter).
    Inside a chunk the prefix sums are a masked C x C matmul; the chunks before it are folded
    into a running state S [..., F, M] and Z [..., F]. Cost O(N C (F + M) + N F M), memory
    O(C^2 + F M) beyond the inputs. Any chunk_size >= 1 gives the same result.
    """
    phi_Q = feature_map(Q)  # [..., N, F]
    phi_K = feature_map(K)  # [..., N, F]
    *batch, N, F = phi_Q.shape
    M = V.shape[-1]
    # Running state over all chunks already processed.
    S = phi_Q.new_zeros(*batch, F, M)  # sum_j phi(K_j)^T V_j
    Z = phi_Q.new_zeros(*batch, F)  # sum_j phi(K_j)
    outputs = []
    for start in range(0, N, chunk_size):
        end = min(start + chunk_size, N)
        q = phi_Q[..., start:end, :]  # [..., C, F]
        k = phi_K[..., start:end, :]  # [..., C, F]
        v = V[..., start:end, :]  # [..., C, M]
        # Within the chunk, token i sees the tokens j <= i of its own chunk: keep the lower triangle.
        A = torch.tril(q @ k.transpose(-2, -1))  # [..., C, C]
        numerator = A @ v + q @ S  # [..., C, M]
        denominator = A.sum(dim=-1, keepdim=True) + q @ Z.unsqueeze(-1)  # [..., C, 1]
        outputs.append(numerator / denominator)
        # Fold this chunk into the state seen by every later chunk.
        S = S + k.transpose(-2, -1) @ v  # [..., F, M]
        Z = Z + k.sum(dim=-2)  # [..., F]
    return torch.cat(outputs, dim=-2)  # [..., N, M]
