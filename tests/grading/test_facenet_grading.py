"""The FaceNet homework as students meet it: `triplet.py` loose, zipped or in a notebook earns full
marks; the bundled example loses exactly its two mistakes' points; functions that return the
wrong shape, dtype, a Python list or NaN, or raise, lose their own cases with a message naming
what was expected, and never crash the grader."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from gradingkit import ROOT, check_honest, run_grader

REFERENCE = ROOT / "reference" / "facenet" / "triplet.py"
EXAMPLE = ROOT / "examples" / "facenet_submission"


def grade(tmp_path: Path, source: str, name: str = "submission"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "triplet.py").write_text(source)
    return run_grader(folder, tmp_path / f"{name}.json", assignment="facenet")


def _notebook(source: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# FaceNet homework"]},
                      {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
                       "source": source.splitlines(keepends=True)}]}


@pytest.mark.parametrize("form", ["py", "zip", "ipynb"])
def test_the_reference_in_every_form_earns_full_marks(tmp_path, schema, form):
    source = REFERENCE.read_text()
    if form == "py":
        submission = tmp_path / "triplet.py"
        submission.write_text(source)
    elif form == "zip":
        submission = tmp_path / "submission.zip"
        with zipfile.ZipFile(submission, "w") as z:
            z.writestr("hw/triplet.py", source)
    else:
        submission = tmp_path / "triplet.ipynb"
        submission.write_text(json.dumps(_notebook(source)))
    graded = run_grader(submission, tmp_path / "results.json", assignment="facenet")
    check_honest(graded, schema)
    lost = [t["name"] for t in graded.tests if t["score"] < t["max_score"]]
    assert not lost, graded.describe()


def test_the_example_loses_the_points_of_its_two_mistakes(tmp_path, schema):
    graded = run_grader(EXAMPLE, tmp_path / "results.json", assignment="facenet")
    check_honest(graded, schema)
    failed = {t["name"]: t["output"] for t in graded.tests if t["score"] < t["max_score"]}
    assert set(failed) == {"semi_hard_triplets: exact ties on a quarter-step grid",
                           "semi_hard_triplets: one-hot rows",
                           "semi_hard_triplets: negatives exactly on both edges of the window",
                           "online_semi_hard_triplet_loss: exact ties",
                           "semi_hard_triplets runs on the whole batch at once"}, graded.describe()
    assert all("strictly farther" in out for name, out in failed.items() if "ties" in name or "edges" in name)
    loop = failed["semi_hard_triplets runs on the whole batch at once"]
    assert "number of tensor operations grows like N^0.8" in loop and "Python loop" in loop, loop


BAD = {
    "a Python list": ("semi_hard_triplets", "return semi_hard_reference(embeddings, labels, margin).tolist()",
                      ["semi_hard_triplets"], "expected a torch.LongTensor of shape [T, 3]"),
    "float indices": ("semi_hard_triplets", "return semi_hard_reference(embeddings, labels, margin).double()",
                      ["semi_hard_triplets"], "expected torch.long"),
    "two columns": ("semi_hard_triplets", "return semi_hard_reference(embeddings, labels, margin)[:, :2]",
                    ["semi_hard_triplets"], "expected [T, 3]"),
    "NaN loss": ("triplet_loss", "return anchor.sum() * float('nan')", ["triplet_loss"], "NaN"),
    "a raise": ("batch_hard_triplet_loss", "raise RuntimeError('not done yet')", ["batch_hard_triplet_loss"],
                "RuntimeError: not done yet"),
    "a float, not a tensor": ("online_semi_hard_triplet_loss", "return 0.5",
                              ["online_semi_hard_triplet_loss"], "float"),
}


SIGNATURES = {"semi_hard_triplets": "embeddings, labels, margin=MARGIN", "triplet_loss": "anchor, positive, negative, margin=MARGIN",
              "batch_hard_triplet_loss": "embeddings, labels, margin=MARGIN",
              "online_semi_hard_triplet_loss": "embeddings, labels, margin=MARGIN"}


def with_broken(function: str, body: str) -> str:
    """The reference with `function` defined again at the end (the later definition wins, inside
    the module too); the right miner stays reachable as `semi_hard_reference`."""
    source = REFERENCE.read_text() + "\n\nsemi_hard_reference = semi_hard_triplets\n"
    return source + f'\n\ndef {function}({SIGNATURES[function]}):\n    """Broken on purpose."""\n    {body}\n'



@pytest.mark.parametrize("bad", BAD)
def test_a_bad_return_loses_its_own_cases_with_a_message(tmp_path, schema, bad):
    function, body, prefixes, needle = BAD[bad]
    source = with_broken(function, body)
    graded = grade(tmp_path, source)
    check_honest(graded, schema)
    assert not [t for t in graded.tests if "internal grader error" in t["output"]], graded.describe()
    targeted = [t for t in graded.tests if t["name"].startswith(tuple(prefixes)) and t["max_score"] > 0
                and t["tags"][0] == "value"]
    assert targeted and all(t["score"] == 0 for t in targeted), graded.describe()
    assert any(needle in t["output"] for t in targeted), [t["output"] for t in targeted]
    # a loss that calls the broken function fails too; nothing else does
    others = [t for t in graded.tests if t not in targeted and t["score"] < t["max_score"]]
    dependent = ("online_semi_hard_triplet_loss", "semi_hard_triplets runs")
    assert all(t["name"].startswith(dependent) for t in others), [t["name"] for t in others]
