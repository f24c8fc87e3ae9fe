"""Two more forms of causal kernel attention, used to cross-check the chunked reference.

All three forms compute V'_i = phi(Q_i) S_i / (phi(Q_i) Z_i) with
S_i = sum_{j<=i} phi(K_j)^T V_j [F, M] and Z_i = sum_{j<=i} phi(K_j)^T [F]:
- `linear_attention.causal_kernel_attention`: chunked (the reference, and the fastest);
- `causal_kernel_attention_recurrent`: the recurrence of the handout, one token at a time;
- `causal_kernel_attention_prefix_sum`: explicit prefix sums, memory N F M.
Shapes as in `linear_attention`: Q, K [..., N, D], V [..., N, M] -> [..., N, M].
"""
import torch


def causal_kernel_attention_recurrent(Q, K, V, feature_map):
    """The handout's recurrence S_i = S_{i-1} + phi(K_i)^T V_i, Z_i = Z_{i-1} + phi(K_i)^T.

    A Python loop over the N positions: easy to read, slow, memory O(F M).
    """
    phi_Q = feature_map(Q)  # [..., N, F]
    phi_K = feature_map(K)  # [..., N, F]
    *batch, N, F = phi_Q.shape
    M = V.shape[-1]
    S = phi_Q.new_zeros(*batch, F, M)  # S_0 = 0
    Z = phi_Q.new_zeros(*batch, F)  # Z_0 = 0
    outputs = []
    for i in range(N):
        q_i = phi_Q[..., i, :]  # [..., F]
        k_i = phi_K[..., i, :]  # [..., F]
        v_i = V[..., i, :]  # [..., M]
        # Update before reading: token i attends to itself.
        S = S + k_i.unsqueeze(-1) * v_i.unsqueeze(-2)  # [..., F, M]: outer product phi(K_i)^T V_i
        Z = Z + k_i  # [..., F]
        numerator = (q_i.unsqueeze(-2) @ S).squeeze(-2)  # [..., M]
        denominator = (q_i * Z).sum(dim=-1, keepdim=True)  # [..., 1]
        outputs.append(numerator / denominator)
    return torch.stack(outputs, dim=-2)  # [..., N, M]


def causal_kernel_attention_prefix_sum(Q, K, V, feature_map):
    """All S_i and Z_i at once with torch.cumsum over the per-token outer products.

    Vectorised but stores every S_i: memory O(N F M), fine for tests, not for long sequences.
    """
    phi_Q = feature_map(Q)  # [..., N, F]
    phi_K = feature_map(K)  # [..., N, F]
    outer = phi_K.unsqueeze(-1) * V.unsqueeze(-2)  # [..., N, F, M]: phi(K_j)^T V_j for every j
    S = outer.cumsum(dim=-3)  # [..., N, F, M]: S_i = sum_{j<=i}
    Z = phi_K.cumsum(dim=-2)  # [..., N, F]: Z_i = sum_{j<=i}
    numerator = (phi_Q.unsqueeze(-2) @ S).squeeze(-2)  # [..., N, M]
    denominator = (phi_Q * Z).sum(dim=-1, keepdim=True)  # [..., N, 1]
    return numerator / denominator
