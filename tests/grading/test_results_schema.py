"""results.json follows Gradescope's specification, scores add up, hidden cases stay hidden.

Every submission is graded through the CLI in a subprocess (see gradingkit.run_grader).
"""
from __future__ import annotations

import copy
import re

import pytest

from gradingkit import (
    ASSIGNMENT,
    REFERENCE_ANSWERS,
    STARTER,
    check_honest,
    make_submission,
    patched,
    reference_source,
    run_grader,
)

# "(got 0.123, expected 0.456)": the comparison reveals values only for visible cases
REVEALED_VALUES = re.compile(r"got [-+0-9.einfa]+, expected [-+0-9.einfa]+")


def assignment_cases():
    """The assignment's declared cases (staff data, no student code involved)."""
    from grader import assignment

    return assignment.load(ASSIGNMENT).cases


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("reference")
    folder = make_submission(base / "submission", reference_source())
    return run_grader(folder, base / "results.json")


@pytest.fixture(scope="module")
def starter_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("starter")
    return run_grader(STARTER, base / "results.json")


@pytest.fixture(scope="module")
def wrong_run(tmp_path_factory):
    """Wrong values (not wrong shapes) in visible and hidden cases alike."""
    source = reference_source()
    source = patched(source, "scores = Q @ K.transpose(-2, -1) / math.sqrt(D)",
                     "scores = Q @ K.transpose(-2, -1) / D")
    source = patched(source, "    return numerator / denominator\n",
                     "    return numerator / denominator + 1e-3\n")
    base = tmp_path_factory.mktemp("wrong")
    folder = make_submission(base / "submission", source)
    return run_grader(folder, base / "results.json")


# ---- the schema itself must be able to fail -------------------------------------------------

def test_schema_rejects_misspelled_and_malformed_fields(schema, reference_run):
    good = reference_run.results
    assert schema.errors(good) == []
    bad_top = dict(copy.deepcopy(good), scroe=1.0)
    assert schema.errors(bad_top), "a misspelled top-level field must be rejected"
    bad_test = copy.deepcopy(good)
    bad_test["tests"][0]["max_scroe"] = bad_test["tests"][0].pop("max_score")
    assert schema.errors(bad_test), "a test without max_score (misspelled) must be rejected"
    bad_status = copy.deepcopy(good)
    bad_status["tests"][0]["status"] = "ok"
    assert schema.errors(bad_status)
    bad_visibility = copy.deepcopy(good)
    bad_visibility["tests"][0]["visibility"] = "public"
    assert schema.errors(bad_visibility)
    no_score = copy.deepcopy(good)
    del no_score["score"]
    assert schema.errors(no_score) == [], "tests all carry a score, so a missing top-level score is allowed"
    del no_score["tests"][0]["score"]
    assert schema.errors(no_score), "neither a top-level score nor a score in every test"
    no_verdict = copy.deepcopy(good)
    del no_verdict["tests"][0]["score"], no_verdict["tests"][0]["status"]
    assert schema.errors(no_verdict), "a test needs a score or a status"


# ---- the reference -------------------------------------------------------------------------

def test_reference_gets_full_marks(reference_run, schema):
    check_honest(reference_run, schema)
    graded = reference_run.tests
    if not REFERENCE_ANSWERS.is_file():
        # symbolic-answer cases without a reference answers.toml cannot be answered yet
        unanswerable = [t for t in graded if t["tags"][0] == "answer"]
        for test in unanswerable:
            assert test["score"] == 0 and "no answer" in test["output"], test
        graded = [t for t in graded if t["tags"][0] != "answer"]
    maximum = sum(t["max_score"] for t in graded)
    assert maximum > 0
    assert sum(t["score"] for t in graded) == pytest.approx(maximum), reference_run.describe()
    for test in graded:
        assert test["score"] == test["max_score"], reference_run.describe()
        assert test["status"] == "passed", reference_run.describe()


def test_every_test_has_name_number_and_visibility(reference_run):
    numbers = []
    for test in reference_run.tests:
        assert isinstance(test.get("name"), str) and test["name"], test
        assert isinstance(test.get("number"), str) and test["number"], test
        assert test.get("visibility") in ("visible", "hidden", "after_due_date", "after_published"), test
        numbers.append(test["number"])
    assert len(set(numbers)) == len(numbers), "test numbers must be unique"


def test_results_list_every_declared_case_with_its_visibility(reference_run):
    declared = {c.name: c.visibility for c in assignment_cases()}
    listed = {t["name"]: t["visibility"] for t in reference_run.tests}
    assert listed == declared
    assert "hidden" in declared.values(), "the assignment should have hidden cases for this test to mean anything"
    assert reference_run.results["extra_data"]["mode"] == "staff"


def test_hidden_cases_never_reveal_expected_values(wrong_run, schema):
    check_honest(wrong_run, schema)
    by_name = wrong_run.by_name
    hidden = {c.name for c in assignment_cases() if c.visibility == "hidden"}
    failed_hidden = [by_name[n] for n in hidden if by_name[n]["status"] == "failed"]
    failed_visible = [t for t in wrong_run.tests if t["visibility"] == "visible" and t["status"] == "failed"]
    # the wrong submission really fails hidden and visible value cases
    assert {t["name"] for t in failed_hidden} >= {
        "softmax_attention, causal, batch x heads",
        "kernel_attention, batch x heads, positive random features",
    }, wrong_run.describe()
    assert failed_visible, wrong_run.describe()
    # positive control: a visible case does show the got/expected values
    assert any(REVEALED_VALUES.search(t["output"]) for t in failed_visible), wrong_run.describe()
    for test in failed_hidden:
        assert test["visibility"] == "hidden"
        assert "outside rtol" in test["output"], test["output"]  # a value mismatch, explained
        assert not REVEALED_VALUES.search(test["output"]), test["output"]
        assert not re.search(r"expected -?\d", test["output"]), test["output"]
    # and the other cases are graded normally
    assert by_name["polynomial_feature_map: kernel (1 + q.k)^2"]["status"] == "passed"
    assert by_name["causal_kernel_attention (elu + 1 features)"]["status"] == "passed"
    assert wrong_run.results["score"] < sum(t["max_score"] for t in wrong_run.tests)


# ---- the untouched starter -----------------------------------------------------------------

def test_starter_scores_zero_with_valid_results(starter_run, schema):
    check_honest(starter_run, schema)
    assert starter_run.results["score"] == 0, starter_run.describe()
    code = starter_run.code_cases()
    assert code, starter_run.describe()
    for test in code:
        assert test["status"] == "failed"
        assert "NotImplementedError" in test["output"], test["output"]
