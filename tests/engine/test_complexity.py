"""The operation counter sees N x N intermediates however they are written."""
import torch

from grader.complexity import OperationCounter, growth_exponent

SIZES = [128, 256, 512, 1024]


def _measure(fn):
    work, peak = [], []
    for n in SIZES:
        x = torch.randn(n, 8, dtype=torch.float64)
        with OperationCounter() as counter:
            fn(x)
        work.append(counter.work)
        peak.append(counter.peak_bytes)
    return growth_exponent(SIZES, work), growth_exponent(SIZES, peak)


def test_linear_work_is_exponent_one():
    work, memory = _measure(lambda x: (x.T @ x) @ x.T)
    assert 0.9 < work < 1.1 and 0.9 < memory < 1.1


def test_quadratic_matrix_is_exponent_two_even_through_einsum():
    work, memory = _measure(lambda x: torch.einsum("id,jd->ij", x, x).softmax(-1) @ x)
    assert 1.9 < work < 2.1 and 1.9 < memory < 2.1


def test_views_cost_nothing():
    # an expanded view has stride 0: no N x N storage is allocated
    _, memory = _measure(lambda x: x[:, :1].expand(-1, x.shape[0]).sum())
    assert memory < 1.2


def test_growth_exponent_fits_power_laws():
    assert abs(growth_exponent([1, 2, 4, 8], [3, 12, 48, 192]) - 2.0) < 1e-9
