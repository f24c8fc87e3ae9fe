"""Independent checks of the kernelized linear attention reference (CS182 HW10).

Everything is float64 with fixed seeds unless a test is about float32. Monte-Carlo tests
state their tolerance as a number of standard errors derived in the test.
"""
import math

import pytest
import torch
import torch.nn.functional as TF
from torch.utils._pytree import tree_flatten
from torch.utils._python_dispatch import TorchDispatchMode

from reference.attention.causal_forms import (
    causal_kernel_attention_prefix_sum,
    causal_kernel_attention_recurrent,
)
from reference.attention.linear_attention import (
    causal_kernel_attention,
    kernel_attention,
    polynomial_feature_map,
    random_feature_map,
    softmax_attention,
    softmax_kernel_feature_map,
)

f64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed, dtype=f64):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def elu_plus_one(X):
    """The feature map of Katharopoulos et al. (2020): positive, so denominators never vanish."""
    return TF.elu(X) + 1


def quadratic_kernel_attention(Q, K, V, feature_map, causal):
    """The definition, O(N^2): A = phi(Q) phi(K)^T, optionally lower-triangular, row-normalized, @ V."""
    A = feature_map(Q) @ feature_map(K).transpose(-2, -1)
    if causal:
        A = torch.tril(A)
    return (A / A.sum(dim=-1, keepdim=True)) @ V


CAUSAL_FORMS = {
    "chunked_default": causal_kernel_attention,
    "chunked_1": lambda Q, K, V, fm: causal_kernel_attention(Q, K, V, fm, chunk_size=1),
    "chunked_7": lambda Q, K, V, fm: causal_kernel_attention(Q, K, V, fm, chunk_size=7),
    "chunked_16": lambda Q, K, V, fm: causal_kernel_attention(Q, K, V, fm, chunk_size=16),
    "chunked_geN": lambda Q, K, V, fm: causal_kernel_attention(Q, K, V, fm, chunk_size=1000),
    "recurrent": causal_kernel_attention_recurrent,
    "prefix_sum": causal_kernel_attention_prefix_sum,
}
FEATURE_MAPS = {"polynomial": polynomial_feature_map, "elu_plus_one": elu_plus_one}


def qkv(N=50, D=4, M=3, batch=(2, 3), seed=0, scale=0.5, dtype=f64):
    # A small scale keeps (1 + q.k)^2 away from 0 so the polynomial denominators are well conditioned.
    return (
        scale * randn(*batch, N, D, seed=seed, dtype=dtype),
        scale * randn(*batch, N, D, seed=seed + 1, dtype=dtype),
        randn(*batch, N, M, seed=seed + 2, dtype=dtype),
    )


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an aten op returns."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


# --------------------------------------------------------------------------- softmax attention


@pytest.mark.parametrize("causal", [False, True])
def test_softmax_attention_matches_torch_sdpa(causal):
    Q, K, V = qkv(N=33, D=8, M=5, scale=1.0, seed=10)
    expected = TF.scaled_dot_product_attention(Q, K, V, is_causal=causal)
    torch.testing.assert_close(softmax_attention(Q, K, V, causal=causal), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_softmax_attention_matches_loop(causal):
    Q, K, V = qkv(N=9, D=4, M=3, batch=(), scale=1.0, seed=20)
    N, D = Q.shape
    expected = torch.empty(N, V.shape[-1], dtype=f64)
    for i in range(N):
        keys = range(i + 1) if causal else range(N)
        scores = [math.exp(float(Q[i] @ K[j]) / math.sqrt(D)) for j in keys]
        total = sum(scores)
        expected[i] = sum(s / total * V[j] for s, j in zip(scores, keys))
    torch.testing.assert_close(softmax_attention(Q, K, V, causal=causal), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- feature maps


def test_polynomial_feature_map_is_exact():
    q, k = randn(200, 5, seed=30), randn(200, 5, seed=31)
    phi_q, phi_k = polynomial_feature_map(q), polynomial_feature_map(k)
    assert phi_q.shape == (200, 1 + 5 + 25)
    torch.testing.assert_close((phi_q * phi_k).sum(-1), (1 + (q * k).sum(-1)) ** 2, rtol=1e-12, atol=1e-12)


# Monte Carlo for random Fourier features. With delta = q - k,
#   phi(q).phi(k) = (1/Dr) sum_i [sin(w_i.q) sin(w_i.k) + cos(w_i.q) cos(w_i.k)] = (1/Dr) sum_i cos(w_i.delta),
# a mean of Dr i.i.d. terms. If E[cos(w.delta)] = kappa, then E[cos^2] = (1 + E[cos(2 w.delta)]) / 2
# = (1 + kappa^4) / 2 for Gaussian w, so Var = (1 - kappa^2)^2 / 2 <= 1/2 and the standard error of
# the estimate is at most 1 / sqrt(2 Dr). We allow 5 standard errors.
D_RANDOM = 20000
STANDARD_ERROR = 1 / math.sqrt(2 * D_RANDOM)  # ~0.005
MC_TOLERANCE = 5 * STANDARD_ERROR  # ~0.025


def pairs_for_gaussian_kernel():
    # |q - k| between about 0.5 and 1.5 so that both kernels below are far from 0 and 1.
    q = randn(6, 3, seed=40)
    direction = randn(6, 3, seed=41)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    distance = torch.linspace(0.5, 1.5, 6, dtype=f64).unsqueeze(-1)
    return q, q + distance * direction


def test_random_features_estimate_gaussian_kernel_with_inverse_variance():
    sigma = 2.0
    q, k = pairs_for_gaussian_kernel()
    W = randn(D_RANDOM, 3, seed=42) / sigma  # rows ~ N(0, sigma^-2 I)
    phi_q, phi_k = random_feature_map(q, W), random_feature_map(k, W)
    assert phi_q.shape == (6, 2 * D_RANDOM)
    estimate = (phi_q * phi_k).sum(-1)
    gaussian = torch.exp(-((q - k) ** 2).sum(-1) / (2 * sigma**2))
    assert (estimate - gaussian).abs().max() < MC_TOLERANCE


def test_random_features_with_handout_variance_estimate_a_different_kernel():
    """Documents the handout discrepancy: w ~ N(0, sigma^2 I) does not give exp(-|q-k|^2/(2 sigma^2))."""
    sigma = 2.0
    q, k = pairs_for_gaussian_kernel()
    W = randn(D_RANDOM, 3, seed=43) * sigma  # rows ~ N(0, sigma^2 I), as the handout says
    estimate = (random_feature_map(q, W) * random_feature_map(k, W)).sum(-1)
    sq_dist = ((q - k) ** 2).sum(-1)
    handout_kernel = torch.exp(-(sigma**2) * sq_dist / 2)
    gaussian = torch.exp(-sq_dist / (2 * sigma**2))
    assert (estimate - handout_kernel).abs().max() < MC_TOLERANCE
    # And it is nowhere near the Gaussian kernel: at least 20 standard errors off for every pair.
    assert (estimate - gaussian).abs().min() > 20 * STANDARD_ERROR


def test_softmax_kernel_feature_map_estimates_exp_dot_product():
    # phi(q).phi(k) = exp(|q|^2/(2 s2)) exp(|k|^2/(2 s2)) * kappa_hat with kappa = exp(-|q-k|^2/(2 s2)).
    # Relative error = (kappa_hat - kappa) / kappa, standard error <= (1 - kappa^2) / (kappa sqrt(2 Dr)).
    # Small norms (|q|, |k| <= 0.5) keep |q - k| <= 1, so kappa >= exp(-1/(2 s2)) and the bound is tight.
    D = 4
    sigma2 = math.sqrt(D)
    q, k = randn(8, D, seed=50), randn(8, D, seed=51)
    q = 0.5 * q / q.norm(dim=-1, keepdim=True) * torch.linspace(0.2, 1.0, 8, dtype=f64).unsqueeze(-1)
    k = 0.5 * k / k.norm(dim=-1, keepdim=True)
    W = randn(D_RANDOM, D, seed=52) / math.sqrt(sigma2)  # rows ~ N(0, I / sigma2)
    phi_q, phi_k = softmax_kernel_feature_map(q, W, sigma2), softmax_kernel_feature_map(k, W, sigma2)
    assert phi_q.shape == (8, 2 * D_RANDOM)
    estimate = (phi_q * phi_k).sum(-1)
    target = torch.exp((q * k).sum(-1) / sigma2)
    kappa = torch.exp(-((q - k) ** 2).sum(-1) / (2 * sigma2))
    relative_tolerance = 5 * (1 - kappa**2) / (kappa * math.sqrt(2 * D_RANDOM))  # 5 standard errors
    assert ((estimate - target).abs() / target < relative_tolerance).all()


def test_softmax_kernel_attention_approximates_softmax_attention():
    # End to end: with sigma2 = sqrt(D), kernel attention with this map approximates softmax attention.
    D = 4
    Q, K, V = qkv(N=20, D=D, M=3, batch=(), scale=0.25, seed=55)
    W = randn(D_RANDOM, D, seed=56) / D**0.25
    approx = kernel_attention(Q, K, V, lambda X: softmax_kernel_feature_map(X, W, math.sqrt(D)))
    # |q|, |k| are small, so each similarity estimate is within ~1% (see the test above) and the
    # outputs, weighted means of V with |V| of order 1, move by a few 1e-2 at most (measured: 3e-4).
    assert (approx - softmax_attention(Q, K, V)).abs().max() < 0.02


# --------------------------------------------------------------------------- kernel attention


@pytest.mark.parametrize("fm", FEATURE_MAPS.values(), ids=FEATURE_MAPS.keys())
def test_kernel_attention_matches_quadratic_formula(fm):
    Q, K, V = qkv(seed=60)
    out = kernel_attention(Q, K, V, fm)
    assert out.shape == V.shape
    torch.testing.assert_close(out, quadratic_kernel_attention(Q, K, V, fm, causal=False), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fm", FEATURE_MAPS.values(), ids=FEATURE_MAPS.keys())
@pytest.mark.parametrize("form", CAUSAL_FORMS.values(), ids=CAUSAL_FORMS.keys())
def test_causal_forms_match_masked_quadratic(form, fm):
    Q, K, V = qkv(N=50, seed=70)  # 50 is not a multiple of 7 or 16, and less than 64 and 1000
    out = form(Q, K, V, fm)
    assert out.shape == V.shape
    torch.testing.assert_close(out, quadratic_kernel_attention(Q, K, V, fm, causal=True), rtol=1e-10, atol=1e-10)


def test_causal_forms_multi_chunk_default():
    # N = 200 spans four default chunks of 64, the last one partial.
    Q, K, V = qkv(N=200, batch=(2,), seed=75)
    expected = quadratic_kernel_attention(Q, K, V, elu_plus_one, causal=True)
    torch.testing.assert_close(causal_kernel_attention(Q, K, V, elu_plus_one), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        causal_kernel_attention_prefix_sum(Q, K, V, elu_plus_one), expected, rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("form", CAUSAL_FORMS.values(), ids=CAUSAL_FORMS.keys())
def test_causal_forms_are_causal(form):
    N, t = 40, 22
    Q, K, V = qkv(N=N, seed=80)
    Q2, K2, V2 = Q.clone(), K.clone(), V.clone()
    for X, seed in ((Q2, 81), (K2, 82), (V2, 83)):
        X[..., t + 1 :, :] = randn(*X[..., t + 1 :, :].shape, seed=seed)
    out, out2 = form(Q, K, V, polynomial_feature_map), form(Q2, K2, V2, polynomial_feature_map)
    assert torch.equal(out[..., : t + 1, :], out2[..., : t + 1, :])
    assert not torch.allclose(out[..., t + 1 :, :], out2[..., t + 1 :, :])  # the change did reach later outputs


def test_causal_forms_gradients_agree():
    Q, K, V = qkv(N=30, seed=90)
    grad_out = randn(*V.shape, seed=91)
    grads = {}
    for name, form in CAUSAL_FORMS.items():
        inputs = [X.clone().requires_grad_() for X in (Q, K, V)]
        out = form(*inputs, polynomial_feature_map)
        grads[name] = torch.autograd.grad((out * grad_out).sum(), inputs)
    inputs = [X.clone().requires_grad_() for X in (Q, K, V)]
    out = quadratic_kernel_attention(*inputs, polynomial_feature_map, causal=True)
    expected = torch.autograd.grad((out * grad_out).sum(), inputs)
    for name, g in grads.items():
        for got, want in zip(g, expected):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("batch", [(), (5,), (2, 3, 2)])
def test_leading_dims(batch):
    Q, K, V = qkv(N=20, batch=batch, seed=100)
    for causal, fn in ((False, kernel_attention), (True, causal_kernel_attention)):
        out = fn(Q, K, V, elu_plus_one)
        assert out.shape == (*batch, 20, 3)
        expected = quadratic_kernel_attention(Q, K, V, elu_plus_one, causal=causal)
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
        # Each batch element is computed independently of the others.
        if batch:
            index = (0,) * len(batch)
            torch.testing.assert_close(fn(Q[index], K[index], V[index], elu_plus_one), out[index], rtol=1e-12, atol=1e-12)
    assert softmax_attention(Q, K, V, causal=True).shape == (*batch, 20, 3)


def test_float32_runs_and_matches_float64():
    Q, K, V = qkv(N=100, seed=110)
    W = randn(64, 4, seed=111) / math.sqrt(2.0)
    calls = {
        "softmax": lambda Q, K, V: softmax_attention(Q, K, V),
        "softmax_causal": lambda Q, K, V: softmax_attention(Q, K, V, causal=True),
        "kernel": lambda Q, K, V: kernel_attention(Q, K, V, polynomial_feature_map),
        "causal": lambda Q, K, V: causal_kernel_attention(Q, K, V, polynomial_feature_map),
        "causal_elu": lambda Q, K, V: causal_kernel_attention(Q, K, V, elu_plus_one, chunk_size=16),
        "random": lambda Q, K, V: random_feature_map(Q, W.to(Q.dtype)),
        "softmax_kernel": lambda Q, K, V: softmax_kernel_feature_map(Q, W.to(Q.dtype), 2.0),
    }
    for name, call in calls.items():
        out64 = call(Q, K, V)
        out32 = call(Q.float(), K.float(), V.float())
        assert out32.dtype == torch.float32, name
        torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")


# --------------------------------------------------------------------------- complexity


def largest_tensor(fn, *args):
    with LargestTensor() as mode:
        fn(*args)
    return mode.max_numel


def test_linear_forms_never_build_an_n_by_n_tensor():
    N, D, M = 1024, 4, 8  # F = 1 + 4 + 16 = 21 for the polynomial map
    Q, K, V = qkv(N=N, D=D, M=M, batch=(), seed=120)
    F = 1 + D + D * D
    chunked = largest_tensor(lambda: causal_kernel_attention(Q, K, V, polynomial_feature_map, chunk_size=64))
    noncausal = largest_tensor(lambda: kernel_attention(Q, K, V, polynomial_feature_map))
    # The largest tensors are phi(Q), phi(K) [N, F] and the output [N, M]; a chunk's A is 64 x 64.
    for largest in (chunked, noncausal):
        assert largest <= max(N * F, N * M, 64 * 64)
        assert largest < N * N / 40
    # The recorder itself does see an N x N matrix when there is one.
    assert largest_tensor(lambda: quadratic_kernel_attention(Q, K, V, polynomial_feature_map, True)) >= N * N
