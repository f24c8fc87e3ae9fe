"""reference/attention/derivations.py: the homework's derivations, machine-checked."""
import importlib
import math
import sys
from pathlib import Path

import pytest
import sympy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.symbolic import grade_answers  # noqa: E402

derivations = importlib.import_module("reference.attention.derivations")
QUESTIONS = importlib.import_module("assignments.linear_attention.questions").QUESTIONS


@pytest.mark.parametrize("check", [
    "softmax_gaussian_identity",
    "cos_expectation_identity",
    "sin_cos_product_identity",
    "random_feature_expectation_identity",
    "softmax_feature_map_identity",
    "causal_recurrence_check",
    "polynomial_feature_map_check",
    "random_feature_cost_check",
    "causal_cost_check",
    "polynomial_cost_check",
])
def test_derivation_holds(check):
    assert getattr(derivations, check)() is True


def test_gaussian_cos_expectation_closed_form():
    u, v = derivations._u, derivations._v
    assert sympy.simplify(derivations.gaussian_cos_expectation() - sympy.exp(-v * u**2 / 2)) == 0


def test_handout_variance_discrepancy_is_exposed():
    d = derivations.random_feature_derivation()
    s, r2 = derivations.sigma, derivations.dist2
    assert sympy.simplify(d.with_inverse_variance - sympy.exp(-r2 / (2 * s**2))) == 0
    assert sympy.simplify(d.with_handout_variance - sympy.exp(-s**2 * r2 / 2)) == 0
    assert d.inverse_variance_matches and not d.handout_variance_matches
    assert sympy.simplify(d.required_variance - 1 / s**2) == 0
    report = d.report()
    assert "sigma^2 I" in report and "matches: False" in report


def test_monte_carlo_agrees_with_the_symbolic_result():
    q, k, sigma2 = [0.6, -0.2, 0.3], [0.1, 0.4, -0.5], 2.0
    dist2 = sum((a - b) ** 2 for a, b in zip(q, k))
    kernel = math.exp(-dist2 / (2 * sigma2))
    handout = math.exp(-sigma2 * dist2 / 2)
    assert abs(kernel - handout) > 0.1
    estimate = derivations.monte_carlo_random_feature_kernel(q, k, 1 / sigma2, d_random=40_000)
    assert abs(estimate - kernel) < 0.02
    estimate = derivations.monte_carlo_random_feature_kernel(q, k, sigma2, d_random=40_000)
    assert abs(estimate - handout) < 0.02


def test_cost_classes():
    classes = derivations.cost_classes()
    N, Dr, D, M = derivations.N, derivations.D_random, derivations.D, derivations.M
    assert set(classes["random_feature_cost"]) == {N * Dr * D, N * Dr * M}
    assert set(classes["causal_cost"]) == {N * Dr * D, N * Dr * M}
    assert classes["polynomial_cost"] == [N * D**2 * M]


def test_reference_answers_cover_the_questions_and_grade_correct():
    assert set(derivations.REFERENCE_ANSWERS) == {q.id for q in QUESTIONS}
    verdicts = grade_answers(derivations.reference_answers_toml(), QUESTIONS)
    assert len(verdicts) == len(QUESTIONS)
    for v in verdicts:
        assert v.correct, v.message


def test_reference_answers_file_if_present():
    path = ROOT / "reference" / "attention" / "answers.toml"
    if not path.exists():
        pytest.skip("reference/attention/answers.toml not written yet "
                    "(derivations.reference_answers_toml() gives its content)")
    for v in grade_answers(path.read_text(), QUESTIONS):
        assert v.correct, v.message
