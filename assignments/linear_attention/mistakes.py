"""Known student mistakes on kernelized linear attention, as patches of the reference.

Each mutant replaces one snippet of `reference/attention/linear_attention.py` (the student
file `linear_attention.py`). All of them run; all but two change some output. The two
`quadratic_*` mutants are numerically correct but build an N x N matrix: only the
complexity check (largest intermediate, growth exponent) can catch them.
"""
from grader.mutants import Mutant

FILE = "linear_attention.py"

MUTANTS = [
    # --- softmax attention -------------------------------------------------------------
    Mutant(
        name="softmax_missing_scale",
        hint="softmax attention is missing the 1/sqrt(D) scaling of the scores Q K^T",
        file=FILE,
        old="    scores = Q @ K.transpose(-2, -1) / math.sqrt(D)  # [..., N, N]\n",
        new="    scores = Q @ K.transpose(-2, -1)  # [..., N, N]\n",
    ),
    Mutant(
        name="softmax_wrong_axis",
        hint="softmax is taken over the queries (dim=-2) instead of over the keys (dim=-1)",
        file=FILE,
        old="    weights = torch.softmax(scores, dim=-1)",
        new="    weights = torch.softmax(scores, dim=-2)",
    ),
    Mutant(
        name="softmax_causal_mask_off_by_one",
        hint="causal mask off by one: position i also attends to position i+1 (mask keys j > i, i.e. triu with diagonal=1)",
        file=FILE,
        old="dtype=torch.bool, device=Q.device), diagonal=1)",
        new="dtype=torch.bool, device=Q.device), diagonal=2)",
    ),
    # --- feature maps --------------------------------------------------------------------
    Mutant(
        name="polynomial_missing_sqrt2",
        hint="polynomial feature map: the linear terms need a factor sqrt(2) so that phi(q)·phi(k) = 1 + 2 q·k + (q·k)^2",
        file=FILE,
        old="    linear = math.sqrt(2.0) * X",
        new="    linear = X",
    ),
    Mutant(
        name="polynomial_missing_constant",
        hint="polynomial feature map is missing the constant feature 1, so phi(q)·phi(k) lacks the 1 of (1 + q·k)^2",
        file=FILE,
        old="    return torch.cat([ones, linear, quadratic], dim=-1)",
        new="    return torch.cat([linear, quadratic], dim=-1)",
    ),
    Mutant(
        name="random_features_missing_scale",
        hint="random features are missing the sqrt(1/D_random) factor, so phi(q)·phi(k) is a sum, not an average, over the random directions",
        file=FILE,
        old="    return math.sqrt(1.0 / D_random) * features",
        new="    return features",
    ),
    Mutant(
        name="random_features_wrong_scale",
        hint="random features are scaled by sqrt(1/(2 D_random)) (the number of features) instead of sqrt(1/D_random), which halves the kernel estimate",
        file=FILE,
        old="    return math.sqrt(1.0 / D_random) * features",
        new="    return math.sqrt(1.0 / (2 * D_random)) * features",
    ),
    Mutant(
        name="random_features_sin_only",
        hint="random features use only sin(W x); both sin(W x) and cos(W x) are needed, since sin(a)sin(b) + cos(a)cos(b) = cos(a - b)",
        file=FILE,
        old="    features = torch.cat([torch.sin(projections), torch.cos(projections)], dim=-1)",
        new="    features = torch.sin(projections)",
    ),
    Mutant(
        name="softmax_kernel_wrong_exponent",
        hint="softmax-kernel feature map uses exp(|x|^2/sigma2); the factor is exp(|x|^2/(2 sigma2))",
        file=FILE,
        old="keepdim=True) / (2 * sigma2))",
        new="keepdim=True) / sigma2)",
    ),
    Mutant(
        name="softmax_kernel_handout_variance",
        hint=(
            "softmax-kernel features rescale W to variance sigma^2 (as the handout states); the Gaussian kernel "
            "exp(-|q-k|^2/(2 sigma^2)) needs w ~ N(0, sigma^-2 I), which is how W is given: use it as is"
        ),
        file=FILE,
        old="    return scale * random_feature_map(X, W)",
        new="    return scale * random_feature_map(X, W * sigma2)",
    ),
    # --- non-causal kernel attention -----------------------------------------------------
    Mutant(
        name="kernel_missing_normalizer",
        hint="kernel attention is missing the normalizer phi(Q_i)·Z_i (the denominator)",
        file=FILE,
        old="    return numerator / denominator\n",
        new="    return numerator\n",
    ),
    Mutant(
        name="feature_map_on_values",
        hint="the feature map is applied to V; only queries and keys go through phi, values are used as they are",
        file=FILE,
        old="    S = phi_K.transpose(-2, -1) @ V  # [..., F, M]",
        new="    S = phi_K.transpose(-2, -1) @ feature_map(V)  # [..., F, M]",
    ),
    Mutant(
        name="quadratic_noncausal",
        hint="kernel attention builds the N x N matrix phi(Q) phi(K)^T; compute phi(K)^T V and phi(K)^T 1 first so the cost is linear in N",
        file=FILE,
        old=(
            "    numerator = phi_Q @ S  # [..., N, M]\n"
            "    denominator = phi_Q @ Z.unsqueeze(-1)  # [..., N, 1]: the sum over j of sim(Q_i, K_j)\n"
        ),
        new=(
            "    A = phi_Q @ phi_K.transpose(-2, -1)  # [..., N, N]\n"
            "    numerator = A @ V  # [..., N, M]\n"
            "    denominator = A.sum(dim=-1, keepdim=True)  # [..., N, 1]\n"
        ),
    ),
    # --- causal kernel attention ---------------------------------------------------------
    Mutant(
        name="causal_missing_normalizer",
        hint="causal kernel attention is missing the normalizer phi(Q_i)·Z_i (the denominator)",
        file=FILE,
        old="        outputs.append(numerator / denominator)",
        new="        outputs.append(numerator)",
    ),
    Mutant(
        name="causal_excludes_self",
        hint="causal prefix off by one: token i does not see itself (use S_i and Z_i including j = i, i.e. update the state before reading it)",
        file=FILE,
        old="        A = torch.tril(q @ k.transpose(-2, -1))  # [..., C, C]",
        new="        A = torch.tril(q @ k.transpose(-2, -1), diagonal=-1)  # [..., C, C]",
    ),
    Mutant(
        name="causal_noncausal_normalizer",
        hint="causal normalizer sums phi(K_j) over all positions; it must use the prefix Z_i = sum over j <= i only",
        file=FILE,
        old="        denominator = A.sum(dim=-1, keepdim=True) + q @ Z.unsqueeze(-1)  # [..., C, 1]",
        new="        denominator = q @ phi_K.sum(dim=-2).unsqueeze(-1)  # [..., C, 1]",
    ),
    Mutant(
        name="quadratic_causal",
        hint="causal kernel attention builds a masked N x N matrix; use the running sums S_i and Z_i so the cost is linear in N",
        file=FILE,
        old="    *batch, N, F = phi_Q.shape\n",
        new=(
            "    *batch, N, F = phi_Q.shape\n"
            "    A = torch.tril(phi_Q @ phi_K.transpose(-2, -1))  # [..., N, N]\n"
            "    return (A @ V) / A.sum(dim=-1, keepdim=True)\n"
        ),
    ),
]
