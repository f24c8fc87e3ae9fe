"""The MAE homework as students meet it: a course-style notebook (alone or zipped with its
autograder.pt) is graded from its definitions only; autograder.pt is graded as the course grades
it when staff configure the course's inputs file, and checked against what the submitted code
computes on the same inputs; the accuracies are self-reported cases; a hostile or malformed
autograder.pt costs its own cases, with a message, and never the run."""
from __future__ import annotations

import importlib
import io
import json
import pickle
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from gradingkit import ROOT, check_honest, run_grader

from grader import assignment as assignments

REFERENCE = ROOT / "reference" / "mae" / "models.py"
EXAMPLE = ROOT / "examples" / "mae_submission"
ACCURACIES = {"vit_acc": np.float64(0.71), "mae_linear_acc": np.float64(0.34), "mae_finetune_acc": 0.73}


@pytest.fixture(scope="module")
def mae():
    return assignments.load("mae")


@pytest.fixture(scope="module")
def course_file(mae):
    return importlib.import_module("dlgrade_assignments.mae.course_file")


@pytest.fixture(scope="module")
def course(course_file):
    return course_file.course_inputs(seed=0)


@pytest.fixture(scope="module")
def course_env(course, tmp_path_factory):
    path = tmp_path_factory.mktemp("course") / "autograder_student.pt"
    torch.save(course, path)
    return {"DLGRADE_COURSE_INPUTS": str(path)}


def staff_module(mae, *mistakes: str) -> tuple[str, types.ModuleType]:
    """The reference with known mistakes (or accepted variants) applied: (its source, the module).
    Staff code only."""
    source = REFERENCE.read_text()
    by_name = {m.name: m for m in mae.mutants + mae.variants}
    for name in mistakes:
        source = by_name[name].apply(source)
    module = types.ModuleType("staff_mae")
    exec(compile(source, "staff_mae", "exec"), module.__dict__)
    return source, module


def saved(output: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save({"output": output}, buffer)
    return buffer.getvalue()


def notebook(source: str) -> str:
    """A course-style notebook: set-up, data and training cells around the definitions."""
    def code(text):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                "source": text.splitlines(keepends=True)}
    cells = [code("!python -m pip install einops\n"),
             code("import seaborn\nseaborn.set()\nimport torchvision\nimport torchvision.transforms as transforms\n"
                  "from google.colab import drive\ndrive.mount('/content/drive')\n"),
             code(source),
             code("trainset = torchvision.datasets.CIFAR10(root='data', train=True, download=True)\n"
                  "while True:\n    pass\n"),
             code("torch.save({'output': {}}, 'autograder.pt')\n")]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def submit(tmp_path: Path, source: str | None, autograder: bytes | None, name: str = "submission") -> Path:
    """A zip of q_mae.ipynb and autograder.pt, as students upload them."""
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as z:
        if source is not None:
            z.writestr("hw9/q_mae.ipynb", notebook(source))
        if autograder is not None:
            z.writestr("hw9/autograder.pt", autograder)
    return path


def grade(tmp_path, submission, env=None, name="results"):
    return run_grader(submission, tmp_path / f"{name}.json", assignment="mae", env=env)


def lost(graded) -> dict[str, str]:
    return {t["name"]: t["output"] for t in graded.tests if t["score"] < t["max_score"]}


def test_the_reference_notebook_with_its_autograder_pt_earns_full_marks(tmp_path, schema, mae, course, course_env):
    source, module = staff_module(mae)
    graded = grade(tmp_path, submit(tmp_path, source, saved({**staff_outputs(module, course), **ACCURACIES})),
                   course_env)
    check_honest(graded, schema)
    assert not lost(graded), graded.describe()
    reported = [t for t in graded.tests if t["name"].startswith("autograder.pt: ") and "self-reported" not in t["name"]]
    assert len(reported) == 8 and all(t["max_score"] > 0 for t in reported)
    assert all("your submitted code reproduces it" in t["output"] for t in reported)
    assert "self-reported" in graded.by_name["autograder.pt: vit_acc (self-reported)"]["output"]


def staff_outputs(module, course):
    from dlgrade_assignments.mae.course_file import notebook_outputs
    return notebook_outputs(module, course)


def test_without_course_inputs_the_saved_outputs_are_skipped_and_said_so(tmp_path, schema, mae, course):
    source, module = staff_module(mae)
    graded = grade(tmp_path, submit(tmp_path, source, saved({**staff_outputs(module, course), **ACCURACIES})))
    check_honest(graded, schema)
    skipped = [t for t in graded.tests if t["name"].startswith("autograder.pt: ") and "self-reported" not in t["name"]]
    assert skipped and all(t["max_score"] == 0 and "course_inputs" in t["output"] for t in skipped)
    assert not lost(graded), graded.describe()


def test_the_example_loses_its_two_mistakes_and_a_low_accuracy(tmp_path, schema, course_env):
    graded = grade(tmp_path, EXAMPLE, course_env)
    check_honest(graded, schema)
    failed = lost(graded)
    assert set(failed) == {"MaskedAutoEncoder.forward_decoder",
                           "ClassificationMAE: detach=True keeps gradients out of the MAE",
                           "autograder.pt: MaskedAutoEncoder.forward_decoder",
                           "autograder.pt: mae_linear_acc (self-reported)",
                           "autograder.pt: mae_finetune_acc (self-reported)"}, graded.describe()
    assert "use the learned masked_tokens" in failed["autograder.pt: MaskedAutoEncoder.forward_decoder"]
    assert "not counted: this check counts only when" in failed["autograder.pt: mae_linear_acc (self-reported)"]
    assert "below the threshold" in failed["autograder.pt: mae_finetune_acc (self-reported)"]
    # the notebook's training loop (and its Drive mount, pip and plots) never ran
    assert graded.seconds < 120


def test_a_copied_autograder_pt_is_not_counted_for_code_that_does_not_compute_it(tmp_path, schema, mae, course,
                                                                                 course_env):
    _, right = staff_module(mae)
    wrong_source, _ = staff_module(mae, "decoder_zeros_for_masked")
    graded = grade(tmp_path, submit(tmp_path, wrong_source, saved({**staff_outputs(right, course), **ACCURACIES})),
                   course_env)
    check_honest(graded, schema)
    failed = lost(graded)
    decoder = graded.by_name["autograder.pt: MaskedAutoEncoder.forward_decoder"]
    assert decoder["score"] == 0 and "does not compute this value" in decoder["output"]
    assert "autograder.pt: MaskedAutoEncoder.forward_encoder" not in failed    # the encoder it does compute


def test_an_autograder_pt_older_than_the_code_is_said_to_be_stale(tmp_path, schema, mae, course, course_env):
    source, _ = staff_module(mae)
    _, old = staff_module(mae, "mask_inverted")
    graded = grade(tmp_path, submit(tmp_path, source, saved({**staff_outputs(old, course), **ACCURACIES})), course_env)
    check_honest(graded, schema)
    failed = lost(graded)
    assert "autograder.pt: random_masking" in failed
    assert "older than your code" in failed["autograder.pt: random_masking"]
    assert "1 where a patch is kept" in failed["autograder.pt: random_masking"]       # the mistake, named
    assert not [n for n in failed if not n.startswith("autograder.pt: ")], graded.describe()


def test_a_notebook_that_fixed_the_courses_restore_masked_slip_is_accepted(tmp_path, schema, mae, course, course_env):
    source, module = staff_module(mae)
    outputs = staff_outputs(module, course)
    outputs["restore_masked"] = module.restore_masked(*course["input"]["restore_masked"])
    graded = grade(tmp_path, submit(tmp_path, source, saved({**outputs, **ACCURACIES})), course_env)
    check_honest(graded, schema)
    entry = graded.by_name["autograder.pt: restore_masked"]
    assert entry["score"] == entry["max_score"] and "a slip in the notebook" in entry["output"]


def test_a_representation_saved_as_the_cls_row_is_accepted_with_code_that_returns_it(tmp_path, schema, mae, course,
                                                                                      course_env):
    source, module = staff_module(mae, "representation_returns_cls_only")
    graded = grade(tmp_path, submit(tmp_path, source, saved({**staff_outputs(module, course), **ACCURACIES})),
                   course_env)
    check_honest(graded, schema)
    assert not lost(graded), graded.describe()
    entry = graded.by_name["autograder.pt: MaskedAutoEncoder.forward_encoder_representation"]
    assert "the CLS row only" in entry["output"] and "reproduces it" in entry["output"]


def test_autograder_pt_without_the_code_earns_nothing_for_its_outputs(tmp_path, schema, mae, course, course_env):
    _, module = staff_module(mae)
    graded = grade(tmp_path, submit(tmp_path, None, saved({**staff_outputs(module, course), **ACCURACIES})),
                   course_env)
    check_honest(graded, schema)
    assert graded.results["score"] == 0
    assert "counts only with the code that wrote it" in graded.by_name["autograder.pt: patchify"]["output"]


class Shell:
    """Pickles to a call of os.system: what a hostile autograder.pt would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def hostile_files(tmp_path: Path) -> dict[str, tuple[bytes, dict[str, str]]]:
    """name -> (autograder.pt bytes, {self-reported case key: what its case must say}). A file
    that cannot be read fails every case alike; bad entries are three to a file, one per key."""
    marker = tmp_path / "pwned"
    shell = io.BytesIO()
    torch.save({"output": {"vit_acc": Shell(marker)}}, shell)
    deep = 0.9
    for _ in range(40):
        deep = [deep]
    every = ("vit_acc", "mae_linear_acc", "mae_finetune_acc")
    return {
        "code in the pickle": (shell.getvalue(), dict.fromkeys(every, "weights_only=True")),
        "plain pickle, not torch.save": (pickle.dumps({"output": {"vit_acc": 0.9}}), dict.fromkeys(every, "could not be read")),
        "garbage": (b"\x00\xffnot a torch file" * 100, dict.fromkeys(every, "could not be read")),
        "not a dict": (saved_raw([1, 2, 3]), dict.fromkeys(every, "is not what the notebook saves")),
        "no output key": (saved_raw({"outputs": {"vit_acc": 0.9}}), dict.fromkeys(every, "is not what the notebook saves")),
        "too large": (saved_raw({"output": {"vit_acc": 0.9, "x": torch.zeros(9 * 2**20)}}),
                      dict.fromkeys(every, "MiB the grader reads")),
        "NaN, above 1, text": (saved({"vit_acc": float("nan"), "mae_linear_acc": 1.5, "mae_finetune_acc": "0.9"}),
                               {"vit_acc": "not a possible value", "mae_linear_acc": "not a possible value",
                                "mae_finetune_acc": "expected a number"}),
        "a bool, nested, missing": (saved({"vit_acc": True, "mae_linear_acc": deep}),
                                    {"vit_acc": "expected a number", "mae_linear_acc": "nested",
                                     "mae_finetune_acc": "has no entry 'mae_finetune_acc'"}),
    }


def saved_raw(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", list(hostile_files(Path("/nonexistent"))))
def test_a_malformed_or_hostile_autograder_pt_costs_its_cases_only(tmp_path, schema, mae, kind):
    data, said = hostile_files(tmp_path)[kind]
    source, _ = staff_module(mae)
    graded = grade(tmp_path, submit(tmp_path, source, data))
    check_honest(graded, schema)
    failed = lost(graded)
    for key, words in said.items():
        case = f"autograder.pt: {key} (self-reported)"
        assert case in failed and (words in failed[case] or "explained in the case" in failed[case]), failed
    assert any(words in failed[f"autograder.pt: {key} (self-reported)"] for key, words in said.items())
    assert not [n for n in failed if not n.startswith("autograder.pt: ")], graded.describe()
    assert not (tmp_path / "pwned").exists()


def test_torchvision_is_a_stand_in_that_says_so_when_used(tmp_path, schema, mae):
    source, _ = staff_module(mae)
    source = source.replace('def unpatchify(patches, patch_size=4):\n',
                            'def unpatchify(patches, patch_size=4):\n'
                            '    torchvision.transforms.Resize(32)(patches)\n', 1)
    graded = grade(tmp_path, submit(tmp_path, "import torchvision\nimport torchvision.transforms\n" + source, None))
    check_honest(graded, schema)
    failed = lost(graded)
    assert "not available in the grading sandbox" in failed["unpatchify"]
    assert "ClassificationViT.forward" not in failed       # the import itself worked


def test_the_course_inputs_file_is_not_needed_by_the_child(mae):
    """Staff data stays with the parent: the manifest puts only autograder.pt in the sandbox."""
    assert mae.submission_data == ["autograder.pt"]
    assert "course_file.py" not in {Path(p).name for p in mae.support_files}
