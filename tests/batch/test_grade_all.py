"""`dlgrade grade-all` as course staff use it: a class in, one results.json per student (the same
as `dlgrade grade` writes) and a gradebook out; a second run grades only what changed; an
interrupted run keeps what it finished; a dead worker costs one submission a verdict, not the
batch; two runs on one gradebook do not corrupt it; Gradescope's export names the students."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from batchkit import REFERENCE, ROOT, make_class
from gradingkit import Validator, read_terminal, run_grader

from grader.batch.grade_all import grade_all as library_grade_all
from grader.batch.gradebook import Gradebook
from grader.batch.sources import SourceError


def grade_all(source: Path, out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "grade-all", "linear_attention", str(source),
                           "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def start_grade_all(source: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grader", "grade-all", "linear_attention", str(source),
                             "--out", str(out), *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def workers_of(proc: subprocess.Popen) -> list[int]:
    """The batch workers this grade-all started (its children; other tests run theirs)."""
    found = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "grader.batch.worker"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def current(out: Path) -> dict[str, dict]:
    with Gradebook(out / "gradebook.sqlite") as book:
        return {row["key"]: row for row in book.current("linear_attention")}


def runs(out: Path) -> int:
    """Gradings recorded so far (0 while the gradebook is still being created)."""
    try:
        with sqlite3.connect(out / "gradebook.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_class_is_graded_as_dlgrade_grade_grades_each_student(a_class, tmp_path):
    out = tmp_path / "grading"
    done = grade_all(a_class, out, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "graded 5 of 5 submissions" in done.stdout
    # not a terminal: one plain progress line per submission
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 5 and all(line.startswith(f"[{i}/5] ") for i, line in enumerate(lines, 1)), done.stderr
    table = current(out)
    assert set(table) == {"ada", "ben", "cleo", "dan", "fay"}
    validator = Validator()
    for key, row in table.items():
        results = json.loads((out / "results" / key / "results.json").read_text())
        validator.check(results)
        assert results["score"] == row["score"] and row["status"] == "graded"
    assert table["ada"]["score"] == table["ada"]["max_score"] == 45
    assert table["cleo"]["score"] == 0
    assert "os._exit() at import time" in table["fay"]["cases"]["softmax_attention"].message
    # the same scores, case by case, as a single `dlgrade grade` of the same submission
    single = run_grader(a_class / "ben", tmp_path / "ben.json")
    assert {t["name"]: t["score"] for t in single.tests} == {n: c.score for n, c in table["ben"]["cases"].items()}
    named = [c.hint for c in table["ben"]["cases"].values() if c.hint]
    assert named and all(h.startswith("likely mistake: ") for h in named)
    # what ben reads: the same verdicts as Markdown and as an HTML page, the named mistake in both
    page = (out / "results" / "ben" / "feedback.html").read_text()
    text = (out / "results" / "ben" / "feedback.md").read_text()
    assert page.startswith("<!DOCTYPE html>") and named[0].removeprefix("likely mistake: ") in page
    assert "## softmax_attention" in text and "Likely mistake" in text
    shown = subprocess.run([sys.executable, "-m", "grader", "gradebook", "show", "linear_attention", "--db",
                            str(out / "gradebook.sqlite")], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and "ada" in shown.stdout and "45 / 45" in shown.stdout


def test_a_terminal_shows_a_progress_bar_with_failures_rate_and_time_left(a_class, tmp_path):
    import pty
    import re

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade-all", "linear_attention", str(a_class), "--out",
                             str(tmp_path / "grading"), "--jobs", "2"], cwd=ROOT, stdin=secondary, stdout=secondary,
                            stderr=secondary, close_fds=True)
    os.close(secondary)
    try:
        screen = read_terminal(primary, proc, 240)
    finally:
        os.close(primary)
    assert proc.wait(30) == 0, screen
    # tqdm's bar: done/total, elapsed<left, the rate, and the failures so far
    assert re.search(r"grading: +\d+%\|.*\| 5/5 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(s/submission|submission/s)", screen), screen
    assert "failed=0" in screen and not re.search(r"^\[\d/5\]", screen, re.MULTILINE)


def test_a_second_run_grades_only_what_changed_and_only_regrades_one_case(a_class, tmp_path):
    out = tmp_path / "grading"
    assert grade_all(a_class, out, "--jobs", "2").returncode == 0
    before = runs(out)
    again = grade_all(a_class, out, "--jobs", "2")
    assert "graded 0 of 5 submissions (5 already graded" in again.stdout, again.stdout + again.stderr
    assert runs(out) == before
    (a_class / "dan.py").write_text((REFERENCE / "linear_attention.py").read_text())
    fixed = grade_all(a_class, out, "--jobs", "2")
    assert "graded 1 of 5 submissions (4 already graded" in fixed.stdout
    assert current(out)["dan"]["cases"]["softmax_attention"].score > 0
    # one case for two students: their other results stay, results.json is merged
    case = "softmax_attention"
    only = grade_all(a_class, out, "--only", case, "--students", "ada,ben")
    assert "graded 2 of 2 submissions" in only.stdout, only.stdout + only.stderr
    table = current(out)
    assert len(table["ada"]["cases"]) > 1 and table["ada"]["score"] == 45
    results = json.loads((out / "results" / "ada" / "results.json").read_text())
    assert len(results["tests"]) == len(table["ada"]["cases"]) and results["score"] == 45


def test_an_interrupted_batch_keeps_what_it_finished_and_resumes(a_class, tmp_path):
    out = tmp_path / "grading"
    proc = start_grade_all(a_class, out, "--jobs", "1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (out / "gradebook.sqlite").exists() or runs(out) < 1):
        time.sleep(0.2)
    workers = workers_of(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    finished = runs(out)
    assert 1 <= finished < 5
    for key in current(out):
        assert (out / "results" / key / "results.json").is_file()
    assert workers and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    resumed = grade_all(a_class, out, "--jobs", "2")
    assert f"graded {5 - finished} of 5 submissions ({finished} already graded" in resumed.stdout, resumed.stdout
    assert len(current(out)) == 5


def test_a_worker_that_dies_costs_its_submission_a_verdict_and_the_batch_goes_on(a_class, tmp_path):
    out = tmp_path / "grading"
    proc = start_grade_all(a_class, out, "--jobs", "1")
    deadline, killed = time.monotonic() + 120, None
    while time.monotonic() < deadline and killed is None:
        pids = workers_of(proc)
        if pids and (out / "gradebook.sqlite").exists() and runs(out) >= 1:
            killed = int(pids[0])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    out_text, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert killed is not None and "graded 5 of 5 submissions" in out_text and "1 failed" in out_text, out_text
    failed = [row for row in current(out).values() if row["status"] == "grader-error"]
    assert len(failed) == 1 and "ended unexpectedly" in failed[0]["message"]
    results = json.loads(Path(failed[0]["results_path"]).read_text())
    assert results["score"] == 0 and "ended unexpectedly" in results["output"]


def test_two_runs_on_one_gradebook_at_once_do_not_corrupt_it(tmp_path):
    first, second = make_class(tmp_path / "first"), tmp_path / "second"
    second.mkdir()
    for i in range(4):
        (second / f"s{i}.py").write_text((REFERENCE / "linear_attention.py").read_text())
    out = tmp_path / "grading"
    a, b = start_grade_all(first, out, "--jobs", "1"), start_grade_all(second, out, "--jobs", "1")
    for proc in (a, b):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 9
        assert db.execute("SELECT COUNT(DISTINCT key) FROM students").fetchone()[0] == 9


def gradescope_export(tmp_path: Path) -> Path:
    """An "Export Submissions" zip: a folder per submission and the metadata that names them,
    one of them a group of two."""
    metadata = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  :created_at: 2026-11-30 21:04:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: Ben Bitdiddle
    :sid: '2001'
    :email: ben@example.edu
  - :name: Cleo Hacker
    :sid: '2002'
    :email: cleo@example.edu
  :created_at: 2026-11-30 22:10:00.000000000 -08:00
  :score: 0.0
"""
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("assignment_42_export/submission_metadata.yml", metadata)
        z.write(REFERENCE / "linear_attention.py", "assignment_42_export/submission_101/linear_attention.py")
        z.write(REFERENCE / "answers.toml", "assignment_42_export/submission_101/answers.toml")
        z.writestr("assignment_42_export/submission_102/linear_attention.py", "def softmax_attention(:\n")
        z.writestr("../escape.py", "print('outside')\n")              # never unpacked
    return path


def test_gradescope_export_names_every_submitter_in_the_csv(tmp_path):
    out = tmp_path / "grading"
    done = grade_all(gradescope_export(tmp_path), out, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "escape.py").exists() and not (out / "escape.py").exists()
    exported = subprocess.run([sys.executable, "-m", "grader", "gradebook", "export", "linear_attention", "--db",
                               str(out / "gradebook.sqlite"), "--cases"], cwd=ROOT, capture_output=True, text=True)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    by_email = {r["Email"]: r for r in rows}
    assert set(by_email) == {"ada@example.edu", "ben@example.edu", "cleo@example.edu"}
    assert by_email["ada@example.edu"]["Score"] == "45" and by_email["ada@example.edu"]["Submission ID"] == "101"
    assert by_email["ben@example.edu"]["Score"] == by_email["cleo@example.edu"]["Score"] == "0"
    assert by_email["ada@example.edu"]["SID"] == "1815" and "softmax_attention" in rows[0]
    canvas = subprocess.run([sys.executable, "-m", "grader", "gradebook", "export", "linear_attention", "--db",
                             str(out / "gradebook.sqlite"), "--style", "canvas"], cwd=ROOT, capture_output=True,
                            text=True)
    header, *lines = list(csv.reader(io.StringIO(canvas.stdout)))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "linear_attention"]
    assert ["Ada Lovelace", "", "1815", "ada@example.edu", "", "45"] in lines


def test_bad_sources_and_options_are_refused_before_grading(tmp_path, a_class):
    missing = grade_all(tmp_path / "nowhere", tmp_path / "out")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("linear_attention.py", "x = 1\n")
    for source, options, said in ((plain, {}, "submission_metadata.yml"), (a_class, {"only": ["nope"]}, "has no case"),
                                  (a_class, {"students": {"zed"}}, "no submission for: zed")):
        with pytest.raises(SourceError, match=said):
            library_grade_all("linear_attention", source, tmp_path / "out", **options)
    assert not (tmp_path / "out" / "gradebook.sqlite").exists()
