"""minbert submissions as students hand them in (three .py files and four prediction files,
loose or zipped), graded through the CLI in a subprocess."""
from __future__ import annotations

from grader.assignment import load as load_assignment
import shutil
import zipfile
from pathlib import Path

import pytest

from gradingkit import ROOT, check_honest, run_grader

REFERENCE = ROOT / "reference" / "bert"
DATA = load_assignment("minbert").data_dir   # manifest [data] dir, or $DLGRADE_DATA_DIR
PREDICTIONS = ("sst-dev", "sst-test", "cfimdb-dev", "cfimdb-test")

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"course data directory {DATA} missing")


def grade(folder: Path, results: Path, *extra):
    return run_grader(folder, results, assignment="minbert", extra_args=extra)


def write_predictions(folder: Path, fmt: str = "current", wrong_every: int = 0) -> None:
    """Prediction files from the data's own labels (every `wrong_every`-th one changed)."""
    for name in PREDICTIONS:
        lines = []
        for i, line in enumerate((DATA / f"{name}.txt").read_text().splitlines()):
            label, sentence = (part.strip() for part in line.split("|||"))
            pred = int(label)
            if wrong_every and i % wrong_every == 0:
                pred = (pred + 1) % 2
            sentence = sentence.lower()
            lines.append(f"{pred} ||| {sentence}" if fmt == "current" else f"{sentence} ||| {label} ||| {pred}")
        (folder / f"{name}-output.txt").write_text("\n".join(lines) + "\n")


def reference_folder(folder: Path, **prediction_options) -> Path:
    folder.mkdir(parents=True)
    for name in ("bert.py", "classifier.py", "optimizer.py"):
        shutil.copy(REFERENCE / name, folder / name)
    write_predictions(folder, **prediction_options)
    return folder


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def by_name(graded) -> dict:
    return graded.by_name


def code_tests(graded, prefix: str) -> list[dict]:
    return [t for t in graded.tests if t["name"].startswith(prefix)]


def test_reference_code_with_correct_predictions_gets_full_marks(tmp_path, schema):
    graded = grade(reference_folder(tmp_path / "submission"), tmp_path / "results.json")
    check_honest(graded, schema)
    for test in graded.tests:
        assert test["score"] == test["max_score"], graded.describe()
    # the public CFIMDB test labels are hidden (all 0): only its format is scored, and it says so
    cfimdb_test = by_name(graded)["cfimdb-test-output.txt"]
    assert "accuracy not scored" in cfimdb_test["output"] and cfimdb_test["max_score"] < 10


def test_zip_made_like_prepare_submit_with_2021_prediction_format(tmp_path, schema):
    folder = reference_folder(tmp_path / "andrew_id", fmt="2021")
    archive = tmp_path / "andrew_id.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in folder.iterdir():
            z.write(path, f"andrew_id/{path.name}")
    graded = grade(archive, tmp_path / "results.json")
    check_honest(graded, schema)
    for test in graded.tests:
        assert test["score"] == test["max_score"], graded.describe()
    assert "{sentence} ||| {true} ||| {pred}" in by_name(graded)["sst-dev-output.txt"]["output"]


def test_classifier_importing_a_missing_package_fails_only_its_cases(tmp_path, schema):
    folder = reference_folder(tmp_path / "submission")
    replace_once(folder / "classifier.py", "import torch\n", "import torch\nimport polars as pl\n")
    graded = grade(folder, tmp_path / "results.json")
    check_honest(graded, schema)
    classifier = code_tests(graded, "classifier")
    assert classifier and all(t["score"] == 0 for t in classifier), graded.describe()
    assert all("classifier.py" in t["output"] and "'polars'" in t["output"] for t in classifier)
    others = [t for t in graded.tests if not t["name"].startswith("classifier")]
    assert all(t["score"] == t["max_score"] for t in others), graded.describe()


def test_2021_classifier_forward_with_token_type_ids(tmp_path, schema):
    """The 2021 starter's forward(input_ids, token_type_ids, attention_mask) is graded alike."""
    folder = reference_folder(tmp_path / "submission")
    replace_once(folder / "classifier.py", "def forward(self, input_ids, attention_mask):",
                 "def forward(self, input_ids, token_type_ids, attention_mask):")
    graded = grade(folder, tmp_path / "results.json")
    check_honest(graded, schema)
    for test in code_tests(graded, "classifier"):
        assert test["score"] == test["max_score"], graded.describe()


def test_missing_attention_dropout_loses_only_the_train_mode_points(tmp_path, schema):
    folder = reference_folder(tmp_path / "submission")
    replace_once(folder / "bert.py", "        probs = self.dropout(probs)\n", "")
    graded = grade(folder, tmp_path / "results.json")
    check_honest(graded, schema)
    lost = {t["name"] for t in graded.tests if t["score"] < t["max_score"]}
    assert lost == {"attention in train mode: dropout on the probabilities", "BertLayer forward in train mode"}, lost
    assert all("dropout missing on the attention probabilities" in by_name(graded)[n]["output"] for n in lost)


def test_wrong_and_reordered_predictions(tmp_path, schema):
    folder = reference_folder(tmp_path / "submission", wrong_every=3)
    lines = (folder / "sst-dev-output.txt").read_text().splitlines()
    (folder / "sst-dev-output.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    (folder / "cfimdb-dev-output.txt").write_text("\n".join(
        (folder / "cfimdb-dev-output.txt").read_text().splitlines()[:-5]) + "\n")
    graded = grade(folder, tmp_path / "results.json")
    check_honest(graded, schema)
    sst_dev = by_name(graded)["sst-dev-output.txt"]
    assert 0 < sst_dev["score"] < sst_dev["max_score"] and "not in the order" in sst_dev["output"], graded.describe()
    cfimdb_dev = by_name(graded)["cfimdb-dev-output.txt"]
    assert cfimdb_dev["score"] == 0 and "240 prediction lines" in cfimdb_dev["output"], graded.describe()


def test_data_dir_override_scores_real_test_labels(tmp_path, schema):
    """Staff hold the real CFIMDB test labels: with them, its accuracy is scored too."""
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    lines = (data / "cfimdb-test.txt").read_text().splitlines()
    (data / "cfimdb-test.txt").write_text("\n".join(
        f"{i % 2} ||| {line.split('|||', 1)[1].strip()}" for i, line in enumerate(lines)) + "\n")
    folder = reference_folder(tmp_path / "submission")
    graded = grade(folder, tmp_path / "results.json", "--data-dir", str(data))
    check_honest(graded, schema)
    cfimdb_test = by_name(graded)["cfimdb-test-output.txt"]
    assert cfimdb_test["max_score"] == 10 and "accuracy 0.5" in cfimdb_test["output"], graded.describe()


def test_gradescope_package_carries_support_files_and_labels(tmp_path, schema):
    """The autograder zip grades a minbert submission in Gradescope's layout on its own: the
    support modules, harness and labels travel inside it."""
    import json
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "grader", "package", "minbert", "--out", str(tmp_path / "dist")],
                   cwd=ROOT, check=True, capture_output=True)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "dist" / "minbert-autograder.zip") as archive:
        names = set(archive.namelist())
        archive.extractall(root / "source")
    for needed in ("assignments/minbert/data/optimizer_test.npy", "assignments/minbert/data/sst-dev.txt",
                   "assignments/minbert/starter/base_bert.py", "assignments/minbert/minbert_harness.py",
                   "assignments/minbert/sandbox_shims/sklearn/metrics.py", "reference/bert/bert.py"):
        assert needed in names, needed
    (root / "results").mkdir()
    reference_folder(root / "submission")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), DLGRADE_PYTHON=sys.executable)
    env.pop("DLGRADE_DATA_DIR", None)
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    schema.check(data)
    assert all(t["score"] == t["max_score"] for t in data["tests"]), [t["name"] for t in data["tests"]
                                                                       if t["score"] < t["max_score"]]
