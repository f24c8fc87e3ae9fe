"""What the parent parses and judges of a student's own text (answers.toml, the notebook, the
prediction files) cannot stall or crash it: each is judged in a bounded helper, and a
pathological file costs its own cases, with a message, never the run. Graded through the CLI."""
from __future__ import annotations

import json
import time

import pytest

from gradingkit import ROOT, check_honest, make_submission, reference_source, run_grader

# plausible wrong big-O answers that sent the old comparison into a search that never ended,
# and hostile expressions
HOSTILE_ANSWERS = {
    "polynomial_cost": "O((N + D + M)^8)",
    "random_feature_cost": "O((N + D + M + D_random)^12)",
    "causal_cost": "O((N + D)*(N + M)*(D + M)*(N + D_random)*(D + D_random))",
    "softmax_gaussian": "(" * 5000 + "q" + ")" * 5000,
    "random_feature_variance": "10^10^10^10",
    "softmax_feature_scale": "exp(" * 400 + "sigma" + ")" * 400,
    "polynomial_feature_dim": "D" + "+D" * 60000,
}


def test_hostile_answers_cost_only_their_questions(tmp_path, schema):
    folder = make_submission(tmp_path / "answers", reference_source(), with_answers=False)
    lines = [f"{key} = {json.dumps(value)}" for key, value in HOSTILE_ANSWERS.items()]
    (folder / "answers.toml").write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    graded = run_grader(folder, tmp_path / "r.json")
    assert time.monotonic() - start < 200, "the answers held up the run"
    check_honest(graded, schema)
    for key in HOSTILE_ANSWERS:
        test = graded.by_name[f"answers.toml: {key}"]
        assert test["score"] == 0 and test["output"].strip(), graded.describe()
        assert "internal grader error" not in test["output"]
    # the code is the reference: all of it still graded, and passing
    assert all(t["status"] == "passed" for t in graded.code_cases()), graded.describe()


def test_one_hostile_answer_among_right_ones_costs_only_its_question(tmp_path, schema):
    # the answers are judged together in one helper: a hostile one must not drag the others down
    folder = make_submission(tmp_path / "one", reference_source())
    answers = (folder / "answers.toml").read_text().splitlines()
    key = "softmax_gaussian"
    answers = [f"{key} = {json.dumps(HOSTILE_ANSWERS[key])}" if line.split("=")[0].strip() == key else line
               for line in answers]
    (folder / "answers.toml").write_text("\n".join(answers) + "\n")
    graded = run_grader(folder, tmp_path / "r.json")
    check_honest(graded, schema)
    answer_tests = {t["name"]: t for t in graded.tests if t["name"].startswith("answers.toml: ")}
    assert answer_tests[f"answers.toml: {key}"]["score"] == 0, graded.describe()
    others = [t for name, t in answer_tests.items() if name != f"answers.toml: {key}"]
    assert len(others) >= 5 and all(t["score"] == t["max_score"] > 0 for t in others), graded.describe()


def _notebook(cells: list[str]) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "source": c, "metadata": {}, "outputs": [],
                                  "execution_count": None} for c in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_a_notebook_nested_beyond_reason_is_a_note_not_a_crash(tmp_path, schema):
    path = tmp_path / "deep" / "HW10.ipynb"
    path.parent.mkdir()
    path.write_text('{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}")
    graded = run_grader(path, tmp_path / "r.json")
    check_honest(graded, schema)
    assert "HW10.ipynb" in graded.results["output"] and "missing linear_attention.py" in graded.results["output"]
    assert all(t["score"] == 0 for t in graded.code_cases())


def test_a_hostile_cell_costs_only_itself(tmp_path, schema):
    source = reference_source()
    hostile = "x = " + "(" * 20_000 + "1" + ")" * 20_000 + "\nbig = 1" + "+1" * 200_000
    path = tmp_path / "cells" / "HW10.ipynb"
    path.parent.mkdir()
    path.write_text(_notebook([hostile, source, "y = " + "-" * 50_000 + "1"]))
    graded = run_grader(path, tmp_path / "r.json")
    check_honest(graded, schema)
    assert "code cell 1" in graded.results["output"], graded.results["output"]
    assert all(t["status"] == "passed" for t in graded.code_cases()), graded.describe()


def _minbert_data():
    from grader.assignment import load

    return load("minbert").data_dir


@pytest.mark.skipif(not _minbert_data().is_dir(), reason="the course's minbert data directory is missing")
def test_hostile_prediction_files_cost_only_their_cases(tmp_path, schema):
    folder = tmp_path / "predictions"
    folder.mkdir()
    for name in ("bert.py", "classifier.py", "optimizer.py"):
        (folder / name).write_bytes((ROOT / "reference" / "bert" / name).read_bytes())
    (folder / "sst-dev-output.txt").write_text("1 ||| " + "a" * 30_000_000)              # one 30 MB line
    (folder / "sst-test-output.txt").write_text("|||\n" * 1_000_000)                       # a million empty fields
    (folder / "cfimdb-dev-output.txt").write_bytes(b"\xff\xfe\x00" * 100_000)              # not text
    (folder / "cfimdb-test-output.txt").write_text(("9" * 5000 + " ||| x\n") * 488)       # huge integers
    graded = run_grader(folder, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    for name in ("sst-dev", "sst-test", "cfimdb-dev", "cfimdb-test"):
        test = graded.by_name[f"{name}-output.txt"]
        assert test["score"] < test["max_score"] and test["output"].strip(), graded.describe()
        assert "internal grader error" not in test["output"]
    code = [t for t in graded.tests if t["tags"][0] == "value"]
    assert code and all(t["status"] == "passed" for t in code), graded.describe()
