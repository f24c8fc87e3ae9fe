"""The linear-attention mutants apply, import, and are each detectable.

Every mutant but the two `quadratic_*` ones must change at least one output on random float64
inputs; those two must leave every output unchanged and instead build an N x N tensor, so that
only a complexity check catches them.
"""
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as TF
from torch.utils._pytree import tree_flatten
from torch.utils._python_dispatch import TorchDispatchMode

from grader.mutants import module_from_source

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PATH = ROOT / "reference" / "attention" / "linear_attention.py"
MISTAKES_PATH = ROOT / "assignments" / "linear_attention" / "mistakes.py"
QUADRATIC = {"quadratic_causal", "quadratic_noncausal"}


def load_mutants():
    spec = importlib.util.spec_from_file_location("linear_attention_mistakes", MISTAKES_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


MUTANTS = load_mutants()
REFERENCE_SOURCE = REFERENCE_PATH.read_text()
REFERENCE = module_from_source(REFERENCE_SOURCE, "linear_attention_reference", str(REFERENCE_PATH))


def mutant_module(mutant):
    return module_from_source(mutant.apply(REFERENCE_SOURCE), f"linear_attention_{mutant.name}", mutant.file)


def elu_plus_one(X):
    return TF.elu(X) + 1


def calls(module, N=150, seed=0):
    """Every public function on random float64 inputs; N = 150 spans three default chunks."""
    g = torch.Generator().manual_seed(seed)
    Q = 0.5 * torch.randn(2, N, 4, generator=g, dtype=torch.float64)
    K = 0.5 * torch.randn(2, N, 4, generator=g, dtype=torch.float64)
    V = torch.randn(2, N, 5, generator=g, dtype=torch.float64)
    W = torch.randn(16, 4, generator=g, dtype=torch.float64) / 2.0**0.5  # rows ~ N(0, I / sigma2)
    sigma2 = 2.0  # != 1, so that a wrong variance of W shows
    m = module
    return {
        "softmax_attention": lambda: m.softmax_attention(Q, K, V),
        "softmax_attention_causal": lambda: m.softmax_attention(Q, K, V, causal=True),
        "polynomial_feature_map": lambda: m.polynomial_feature_map(Q),
        "random_feature_map": lambda: m.random_feature_map(Q, W),
        "softmax_kernel_feature_map": lambda: m.softmax_kernel_feature_map(Q, W, sigma2),
        "kernel_attention_elu": lambda: m.kernel_attention(Q, K, V, elu_plus_one),
        "kernel_attention_poly": lambda: m.kernel_attention(Q, K, V, m.polynomial_feature_map),
        "causal_kernel_attention_elu": lambda: m.causal_kernel_attention(Q, K, V, elu_plus_one),
        "causal_kernel_attention_poly": lambda: m.causal_kernel_attention(Q, K, V, m.polynomial_feature_map),
    }


def outputs(module):
    return {name: call() for name, call in calls(module).items()}


def same(a, b, tol):
    return a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol)


REFERENCE_OUTPUTS = outputs(REFERENCE)


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


def test_mutant_list():
    names = [m.name for m in MUTANTS]
    assert len(names) >= 10
    assert len(set(names)) == len(names), "mutant names must be unique"
    assert QUADRATIC <= set(names)
    for m in MUTANTS:
        assert m.file == "linear_attention.py"
        assert m.hint.strip() and m.old != m.new


def test_reference_is_self_contained():
    imports = [line for line in REFERENCE_SOURCE.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import math", "import torch"]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_applies_and_imports(mutant):
    assert REFERENCE_SOURCE.count(mutant.old) == 1
    module = mutant_module(mutant)
    public = {n for n in dir(REFERENCE) if not n.startswith("_") and callable(getattr(REFERENCE, n))}
    assert all(callable(getattr(module, n, None)) for n in public)
    # Every call runs without raising (the outputs may be wrong, which is the point).
    for name, call in calls(module).items():
        assert isinstance(call(), torch.Tensor), name


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.name not in QUADRATIC], ids=lambda m: m.name)
def test_mutant_changes_some_output(mutant):
    got = outputs(mutant_module(mutant))
    changed = [name for name, ref in REFERENCE_OUTPUTS.items() if not same(got[name], ref, 1e-6)]
    assert changed, f"mutant {mutant.name} is indistinguishable from the reference"


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.name in QUADRATIC], ids=lambda m: m.name)
def test_quadratic_mutant_is_correct_but_quadratic(mutant):
    module = mutant_module(mutant)
    got = outputs(module)
    for name, ref in REFERENCE_OUTPUTS.items():
        assert same(got[name], ref, 1e-10), name
    N = 512
    g = torch.Generator().manual_seed(1)
    Q, K = (0.5 * torch.randn(N, 4, generator=g, dtype=torch.float64) for _ in range(2))
    V = torch.randn(N, 5, generator=g, dtype=torch.float64)
    fn = module.causal_kernel_attention if mutant.name == "quadratic_causal" else module.kernel_attention
    with LargestTensor() as mode:
        fn(Q, K, V, elu_plus_one)
    assert mode.max_numel >= N * N
    # The reference at the same size stays far below N x N.
    reference_fn = getattr(REFERENCE, fn.__name__)
    with LargestTensor() as mode:
        reference_fn(Q, K, V, elu_plus_one)
    assert mode.max_numel < N * N / 16
