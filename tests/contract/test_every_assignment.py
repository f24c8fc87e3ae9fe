"""What every homework must satisfy before it ships, parametrized over `dlgrade list`: a new
homework gets these tests without writing any.

  - `dlgrade verify`: the reference earns full marks, the starter zero, every known mistake
    loses points, every accepted variant keeps them (with progress on a terminal);
  - the student bundle carries nothing staff-only;
  - the manifest agrees with reference/, the starter, the cases and the mistakes.
"""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from gradingkit import read_terminal

from grader import assignment as assignments
from grader.cases import Answer

ROOT = Path(__file__).resolve().parents[2]
NAMES = assignments.available()
# assignments whose every known mistake gives a wrong value in some case, so the feedback can
# name it (elsewhere a mistake may only cost time or work, judged by a cost case, or raise)
NAMED_IN_FEEDBACK = {"minbert"}
pytestmark = pytest.mark.parametrize("name", NAMES)


def dlgrade(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _number_after(lines: list[str], prefix: str) -> tuple[float, float]:
    line = next(line for line in lines if line.startswith(prefix))
    got, total = line.split(":", 1)[1].split("/")[:2]
    return float(got), float(total.split()[0])


def test_verify_reference_full_starter_zero_every_mistake_caught_every_variant_accepted(name):
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "verify", name], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=secondary, text=True)
    os.close(secondary)
    progress = read_terminal(primary, proc, 900)
    stdout = proc.communicate(timeout=900)[0]
    os.close(primary)
    assert proc.returncode == 0, stdout + progress[-3000:]
    lines = stdout.splitlines()
    earned, total = _number_after(lines, "reference:")
    assert earned == total > 0, stdout
    assert _number_after(lines, "starter:")[0] == 0, stdout
    caught, mutants = _number_after(lines, "mutation score:")
    assert caught == mutants >= 1 and "NOT CAUGHT" not in stdout, stdout
    assert "REJECTED" not in stdout, stdout
    if name in NAMED_IN_FEEDBACK:   # every mistake is a wrong value there, named where it shows
        assert not [line for line in lines if line.startswith("mutant ") and "named in 0 of them" in line], stdout
    # progress: each graded submission is announced on the terminal as it finishes
    assert "reference: " in progress and progress.count("mutant ") >= mutants, progress[-2000:]


def test_student_bundle_carries_nothing_staff_only(name, tmp_path):
    run = dlgrade("bundle", name, "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assignment = assignments.load(name)
    [bundle] = tmp_path.glob("*.zip")
    with zipfile.ZipFile(bundle) as z:
        contents = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
    staff_named = [n for n in contents if n.startswith(("reference/", "tests/", "docker/"))
                   or n.endswith(("mistakes.py", "questions.py", "ANSWERS.md"))]
    assert not staff_named, staff_named
    # no line of the solution: the reference's lines that the starter does not have already
    # (imports of the course's own modules are no solution; a known mistake's hint may quote the
    # fix on purpose: it is what the student sees when their output matches that mistake)
    starter = "\n".join([p.read_text() for p in assignment.starter.rglob("*.py")] +
                        [m.hint for m in assignment.mutants])
    for filename, path in assignment.reference_files.items():
        solution = [line.strip() for line in path.read_text().splitlines()
                    if len(line.strip()) > 30 and line.strip() not in starter
                    and not line.strip().startswith(("import ", "from "))]
        for member, data in contents.items():
            text = data.decode("utf-8", "replace")
            leaked = [line for line in solution if line in text]
            assert not leaked, f"{member} quotes the solution in {filename}: {leaked[:3]}"
    # no label file of the data directory
    data_names = {Path(f).name for f in assignment.data_files}
    assert not [n for n in contents if Path(n).name in data_names and not n.startswith("assignments/")]
    # the golden values hold the public cases only
    hidden = [c.name for c in assignment.cases if not c.public and not isinstance(c, Answer)]
    cases_py = contents.get(f"assignments/{name}/cases.py", b"").decode()
    assert not [c for c in hidden if repr(c) in cases_py or f'"{c}"' in cases_py], "hidden cases travel"


def test_manifest_agrees_with_reference_starter_cases_and_mistakes(name):
    assignment = assignments.load(name)
    starter = {p.name for p in assignment.starter.iterdir()} if assignment.starter.is_dir() else set()
    for file in assignment.files:
        assert file in assignment.reference_files, f"{file} has no [reference] entry"
        assert file in starter, f"{file} is not in {assignment.starter}"
    missing = [str(p) for p in assignment.reference_files.values() if not p.is_file()]
    assert not missing, f"[reference] paths that do not exist: {missing}"
    student_modules = {Path(f).stem for f in assignment.files + assignment.optional_files}
    support_modules = {Path(f).stem for f in assignment.support_files if "/" not in f}
    for case in assignment.cases:
        call = getattr(case, "call", None)
        if call is not None:
            unknown = call.modules(assignment.default_module) - student_modules - support_modules
            assert not unknown, f"case {case.name!r} calls modules no file provides: {sorted(unknown)}"
    for patch in [*assignment.mutants, *assignment.variants]:
        assert patch.file in assignment.reference_files, f"{patch.name} patches {patch.file}, not a reference file"
        assert patch.apply(assignment.reference_files[patch.file].read_text()) is not None
        assert assignment.case_names_using(patch.file), f"{patch.name}: no case runs {patch.file}"
    assert all(m.hint.strip() for m in assignment.mutants), "every known mistake needs a hint for students"
    assert assignment.total_points > 0
