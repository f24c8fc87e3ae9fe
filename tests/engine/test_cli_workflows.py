"""The staff workflows, run as a user runs them: through the `dlgrade` command."""
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "tests" / "grading" / "gradescope_results.schema.json").read_text())


def dlgrade(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_verify_linear_attention_full_reference_zero_starter_all_mutants_caught():
    """With stderr on a terminal: the report on stdout, and progress (each mistake as it is
    graded) on the terminal."""
    import os
    import pty

    sys.path.insert(0, str(ROOT / "tests" / "grading"))
    from gradingkit import read_terminal

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "verify", "linear_attention"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    progress = read_terminal(primary, proc, 600)
    stdout = proc.communicate(timeout=600)[0]
    os.close(primary)
    assert proc.returncode == 0, stdout + progress
    lines = stdout.splitlines()
    reference = next(l for l in lines if l.startswith("reference:")).split(":")[1].split("/")
    assert float(reference[0]) == float(reference[1]) > 0
    assert next(l for l in lines if l.startswith("starter:")).startswith("starter: 0 /")
    caught, total = next(l for l in lines if l.startswith("mutation score:")).split(":")[1].strip().split("/")
    assert caught == total and int(total) >= 8
    assert "NOT CAUGHT" not in stdout
    assert progress.count("mutant ") >= int(total) and "reference: " in progress, progress[-2000:]


def test_list_shows_points():
    run = dlgrade("list")
    assert run.returncode == 0
    assert "linear_attention" in run.stdout and "points" in run.stdout


def test_unknown_assignment_is_a_clear_error():
    run = dlgrade("grade", "no_such_homework", "x.py")
    assert run.returncode == 2 and "unknown assignment 'no_such_homework'" in run.stderr


def test_student_mode_grades_public_cases_from_golden_files_with_hints(tmp_path):
    results = tmp_path / "results.json"
    run = dlgrade("grade", "linear_attention", "examples/linear_attention_submission", "--mode", "student",
                  "--results", str(results))
    assert run.returncode == 0, run.stderr
    data = json.loads(results.read_text())
    jsonschema.validate(data, SCHEMA)
    assert all(t["visibility"] == "visible" for t in data["tests"])
    causal = next(t for t in data["tests"] if t["name"] == "causal_kernel_attention (elu + 1 features)")
    assert causal["score"] == 0 and "**Likely mistake:** causal prefix off by one" in causal["output"]
    assert "public cases only" in data["output"]


def test_reference_answers_file_matches_the_derivations():
    from reference.attention.derivations import reference_answers_toml

    assert (ROOT / "reference" / "attention" / "answers.toml").read_text() == reference_answers_toml()
