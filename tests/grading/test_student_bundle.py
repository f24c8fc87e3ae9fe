"""The student bundle grades the public cases from golden values, names known mistakes, and
carries nothing that gives the solution away."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from gradingkit import ROOT


def test_student_bundle_grades_public_cases_without_staff_files(tmp_path):
    subprocess.run([sys.executable, "-m", "grader", "bundle", "linear_attention", "--out", str(tmp_path)],
                   cwd=ROOT, check=True, capture_output=True)
    bundle = tmp_path / "linear_attention-student.zip"
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        z.extractall(tmp_path / "student")
    assert not any(n.startswith("reference/") for n in names)
    assert not any(n.endswith(("questions.py", "mistakes.py", "ANSWERS.md")) for n in names)
    assert "assignments/linear_attention/golden/public.pt" in names
    assert "assignments/linear_attention/hints.toml" in names

    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", "linear_attention",
                           str(ROOT / "examples" / "linear_attention_submission"), "--results", str(results)],
                          cwd=tmp_path / "student", capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(results.read_text())
    assert data["extra_data"]["mode"] == "student"
    tests = data["tests"]
    assert tests and not any(t["name"].startswith("answers.toml") for t in tests)
    # the example's causal mistake is named from the golden mutant values and hints.toml
    causal = [t for t in tests if t["name"].startswith("causal_kernel_attention") and t["status"] == "failed"]
    assert causal and any("token i does not see itself" in t["output"] for t in causal), tests
