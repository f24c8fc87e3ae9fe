"""`dlgrade new NAME` writes a homework that passes `dlgrade verify` as written, and whose
golden values let a student bundle grade it. Its `random_rows` case draws from torch's global
generator: it passes only because the student's call (in the sandbox) and the reference's (in
the parent) are seeded with one seed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.scaffold import ScaffoldError, check_name

ROOT = Path(__file__).resolve().parents[2]
RANDOM_CASE = "random_rows: keep 3 rows chosen at random"


def dlgrade(root: Path, *args, timeout=600):
    env = {**os.environ, "DLGRADE_ROOT": str(root), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    run = dlgrade(root, "new", "demo")
    assert run.returncode == 0, run.stdout + run.stderr
    return root


def _grade(root: Path, submission: Path, results: Path, *extra) -> dict:
    run = dlgrade(root, "grade", "demo", str(submission), "--results", str(results), *extra)
    assert run.returncode == 0, run.stderr
    return json.loads(results.read_text())


def test_new_writes_the_skeleton_and_its_golden_values(demo):
    for path in ("assignments/demo/manifest.toml", "assignments/demo/cases.py", "assignments/demo/mistakes.py",
                 "assignments/demo/starter/demo.py", "reference/demo/demo.py", "assignments/demo/golden/public.pt"):
        assert (demo / path).is_file(), path
    again = dlgrade(demo, "new", "demo")
    assert again.returncode == 2 and "exists already" in again.stderr and "nothing was written" in again.stderr


def test_new_homework_passes_verify(demo):
    run = dlgrade(demo, "verify", "demo")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "reference: 10 / 10" in run.stdout and "starter: 0 / 10" in run.stdout
    assert "mutation score: 1/1" in run.stdout


def test_a_case_drawing_from_the_global_generator_is_judged_on_one_seed(demo, tmp_path):
    """The reference as a submission passes it in both modes; code that draws its own way does not."""
    submission = tmp_path / "reference"
    submission.mkdir()
    shutil.copy(demo / "reference" / "demo" / "demo.py", submission / "demo.py")
    for mode in ("staff", "student"):
        results = _grade(demo, submission, tmp_path / f"{mode}.json", "--mode", mode)
        case = next(t for t in results["tests"] if t["name"] == RANDOM_CASE)
        assert case["score"] == case["max_score"] > 0, (mode, case["output"])
    own = tmp_path / "own_generator"
    own.mkdir()
    source = (submission / "demo.py").read_text()
    (own / "demo.py").write_text(source.replace("torch.randperm(x.shape[0])",
                                                "torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(7))"))
    results = _grade(demo, own, tmp_path / "own.json", "--mode", "staff")
    case = next(t for t in results["tests"] if t["name"] == RANDOM_CASE)
    assert case["score"] == 0, case["output"]


@pytest.mark.parametrize("name", ["Demo", "1demo", "class", "a", "demo-hw", "x" * 41])
def test_unusable_names_are_refused(name):
    with pytest.raises(ScaffoldError):
        check_name(name)
