"""The comparison explains differences a student can act on, and never reveals hidden values."""
import torch

from grader.compare import Tolerance, compare


def test_equal_tensors_pass_and_report_the_error():
    x = torch.randn(3, 4, dtype=torch.float64)
    result = compare(x, x + 1e-12)
    assert result.ok and result.fraction == 1.0
    assert "largest error" in result.message


def test_shape_dtype_and_type_are_checked_before_values():
    x = torch.zeros(2, 3, dtype=torch.float64)
    assert "shape [3, 2], expected [2, 3]" in compare(x, x.T.contiguous()).message
    assert "dtype torch.float32" in compare(x, x.float()).message
    assert "got list" in compare(x, [0.0]).message


def test_largest_error_location_and_count():
    expected = torch.zeros(4, 5, dtype=torch.float64)
    actual = expected.clone()
    actual[2, 3] = 0.5
    actual[0, 0] = 1e-3
    result = compare(expected, actual)
    assert not result.ok
    assert "2 of 20 entries" in result.message
    assert "at index (2, 3)" in result.message and "got 0.5, expected 0" in result.message


def test_hidden_cases_do_not_reveal_expected_values():
    expected = torch.ones(3, dtype=torch.float64)
    message = compare(expected, expected * 2, reveal=False).message
    assert "expected 1" not in message and "largest error" in message


def test_nan_fails_unless_matching_a_known_mistake():
    expected = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    assert "NaN" in compare(torch.zeros(2, dtype=torch.float64), expected).message
    assert not compare(expected, expected).ok
    assert compare(expected, expected, equal_nan=True).ok


def test_tolerance_defaults_follow_dtype():
    e32 = torch.ones(10)
    assert compare(e32, e32 + 5e-6).ok
    assert not compare(e32.double(), e32.double() + 5e-6).ok
    assert compare(e32.double(), e32.double() + 5e-6, Tolerance(atol=1e-5)).ok


def test_sequences_give_partial_fractions():
    a, b = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    result = compare((a, b), (a, a))
    assert not result.ok and result.fraction == 0.5
    assert "got a tuple of length 1" in compare((a, b), (a,)).message


def test_the_course_relative_error_is_symmetric_elementwise_and_names_the_worst_entry():
    course = Tolerance(relative=1e-3)
    expected = torch.tensor([[1.0, -2.0], [1e-9, 0.0]], dtype=torch.float64)
    assert compare(expected, expected * (1 + 5e-4), course).ok               # 5e-4 / 2 per entry
    off = expected.clone()
    off[0, 1] = -2.01                                                         # 0.01 / 4.01
    result = compare(expected, off, course)
    assert not result.ok and "(0, 1)" in result.message and "0.00249" in result.message
    # both zero: 0 / max(1e-8, 0) is no error; a tiny entry against zero is a whole error
    tiny = expected.clone()
    tiny[1, 1] = 1e-6
    assert not compare(expected, tiny, course).ok
    assert not compare(expected, expected.float(), course).ok                 # dtypes still must match
    nan = expected.clone()
    nan[0, 0] = float("nan")
    assert "NaN" in compare(expected, nan, course).message
