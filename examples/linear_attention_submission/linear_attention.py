# An example student submission (written independently of the reference). It is correct
# except for one realistic mistake in causal_kernel_attention, so that `make grade` shows
# what feedback looks like.
import math

import torch


def softmax_attention(Q, K, V, causal=False):
    scores = torch.einsum("...id,...jd->...ij", Q, K) / math.sqrt(Q.shape[-1])
    if causal:
        n = Q.shape[-2]
        keep = torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.einsum("...ij,...jm->...im", scores.softmax(dim=-1), V)


def polynomial_feature_map(X):
    # features ordered as [x_i x_j, sqrt(2) x, 1]: any order gives the same kernel
    outer = torch.einsum("...i,...j->...ij", X, X).reshape(*X.shape[:-1], -1)
    return torch.cat([outer, math.sqrt(2) * X, torch.ones_like(X[..., :1])], dim=-1)


def random_feature_map(X, W):
    proj = X @ W.T
    return torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1) / math.sqrt(W.shape[0])


def softmax_kernel_feature_map(X, W, sigma2):
    return torch.exp((X ** 2).sum(-1, keepdim=True) / (2 * sigma2)) * random_feature_map(X, W)


def kernel_attention(Q, K, V, feature_map):
    q, k = feature_map(Q), feature_map(K)
    kv = torch.einsum("...nf,...nm->...fm", k, V)
    z = k.sum(dim=-2)
    return torch.einsum("...nf,...fm->...nm", q, kv) / torch.einsum("...nf,...f->...n", q, z).unsqueeze(-1)


def causal_kernel_attention(Q, K, V, feature_map):
    q, k = feature_map(Q), feature_map(K)
    S = torch.zeros(*q.shape[:-2], q.shape[-1], V.shape[-1], dtype=Q.dtype)
    Z = torch.zeros(*q.shape[:-2], q.shape[-1], dtype=Q.dtype)
    out = []
    for i in range(Q.shape[-2]):
        # MISTAKE: the state is read before token i is added, so token i does not see itself
        numerator = torch.einsum("...f,...fm->...m", q[..., i, :], S)
        denominator = torch.einsum("...f,...f->...", q[..., i, :], Z).unsqueeze(-1)
        out.append(numerator / denominator)
        S = S + torch.einsum("...f,...m->...fm", k[..., i, :], V[..., i, :])
        Z = Z + k[..., i, :]
    return torch.stack(out, dim=-2)
