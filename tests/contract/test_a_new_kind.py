"""A new kind of case is one class: written in the homework's own cases.py, it runs through the
Context protocol (grader/cases.py) with no change to the engine, in staff and student mode, and
`verify` holds it to the same contract as the built-in kinds.

The kind here, `Raises`, checks that bad input is refused with a given exception rather than
silently computed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RAISES = '''

from dataclasses import dataclass, field

from grader.cases import Case, StudentError, Verdict


@dataclass
class Raises(Case):
    """The call must raise `error`: bad input is refused, not silently computed."""
    call: Call = None
    inputs: dict = field(default_factory=dict)
    error: str = "ValueError"

    def run(self, ctx) -> Verdict:
        inputs = ctx.inputs(self, self.inputs)
        called = "called " + self.call.describe(inputs)
        try:
            _, printed = ctx.student(self, self.call, inputs)
        except StudentError as exc:
            if f"{self.error}:" in str(exc):
                return Verdict(self.points, self.points, f"raised {self.error}, as it should", called=called)
            return self.failed(f"raised something other than {self.error}:\\n{exc}", called=called)
        return self.failed(f"returned a value; it should raise {self.error}", called=called, student_output=printed)


CASES.append(Raises("standardize refuses a vector", 1, call=Call("standardize", ("x",)), inputs={"x": Randn(16)}))
'''

GUARD = '''    if x.dim() < 2:
        raise ValueError("standardize expects rows: a tensor of at least 2 dimensions")
'''


def dlgrade(root: Path, *args):
    env = {**os.environ, "DLGRADE_ROOT": str(root), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    assert dlgrade(root, "new", "demo").returncode == 0
    with open(root / "assignments" / "demo" / "cases.py", "a") as f:
        f.write(RAISES)
    reference = root / "reference" / "demo" / "demo.py"
    text = reference.read_text()
    marker = '    mean = x.mean(dim=-1, keepdim=True)'
    reference.write_text(text.replace(marker, GUARD + marker))
    return root


def test_verify_holds_the_new_kind_to_the_contract(root):
    run = dlgrade(root, "verify", "demo")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "reference: 11 / 11" in run.stdout and "starter: 0 / 11" in run.stdout


def test_the_new_kind_grades_a_submission_that_computes_instead_of_refusing(root, tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    unguarded = (root / "reference" / "demo" / "demo.py").read_text().replace(GUARD, "")
    (submission / "demo.py").write_text(unguarded)
    for mode in ("staff", "student"):
        results = tmp_path / f"{mode}.json"
        run = dlgrade(root, "grade", "demo", str(submission), "--results", str(results), "--mode", mode)
        assert run.returncode == 0, run.stderr
        case = next(t for t in json.loads(results.read_text())["tests"] if t["name"] == "standardize refuses a vector")
        assert case["score"] == 0 and "it should raise ValueError" in case["output"], (mode, case)
    shutil.rmtree(submission)
