"""The command line as staff meet it: mistakes caught before grading with one line and exit 2,
Ctrl-C and SIGTERM exit 130 leaving nothing behind, progress only on a terminal, --version and
--help that explain every argument."""
from __future__ import annotations

import argparse
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from grader.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "grading"))
from gradingkit import read_terminal, run_directory_of  # noqa: E402
EXAMPLE = ROOT / "examples" / "linear_attention_submission"
COMMANDS = tuple(next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def dlgrade(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kw)


def assert_usage_error(run, *needles):
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlgrade: "), run.stderr
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version_matches_pyproject():
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    run = dlgrade("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"dlgrade {version}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_explains_its_arguments(command):
    run = dlgrade(command, "--help")
    assert run.returncode == 0, run.stderr
    usage, _, body = run.stdout.partition("\n\n")
    # a description of the command itself, and a help text for each argument it takes
    description = body.split("\n\n")[0].strip()
    assert len(description) > 30, run.stdout
    arguments = re.findall(r"^  (\S+(?:, \S+)*)(?: [A-Z_{},|]+)?(?:  +(\S.*))?$", run.stdout, re.MULTILINE)
    assert arguments, run.stdout
    for name, text in arguments:
        assert text.strip() or name in ("-h, --help",), f"{command}: {name} has no help text\n{run.stdout}"


def test_submission_that_does_not_exist(tmp_path):
    assert_usage_error(dlgrade("grade", "linear_attention", str(tmp_path / "nope.py"),
                               "--results", str(tmp_path / "r.json")), "nope.py", "no such file")
    assert not (tmp_path / "r.json").exists()


def test_results_naming_a_directory(tmp_path):
    assert_usage_error(dlgrade("grade", "linear_attention", str(EXAMPLE), "--results", str(tmp_path)),
                       "is a directory")


def test_data_dir_that_does_not_exist(tmp_path):
    assert_usage_error(dlgrade("grade", "minbert", str(EXAMPLE), "--data-dir", str(tmp_path / "nope"),
                               "--results", str(tmp_path / "r.json")), "--data-dir", "no such directory")


def test_data_dir_without_the_labels(tmp_path):
    (tmp_path / "sst-dev.txt").write_text("1 ||| fine\n")
    assert_usage_error(dlgrade("grade", "minbert", str(EXAMPLE), "--data-dir", str(tmp_path),
                               "--results", str(tmp_path / "r.json")), "lacks", "cfimdb-test.txt", "optimizer_test.npy")


def test_folder_of_several_submissions_points_to_batch_grading(tmp_path):
    for student in ("alice", "bob", "carol"):
        shutil.copytree(EXAMPLE, tmp_path / "class" / student)
    run = dlgrade("grade", "linear_attention", str(tmp_path / "class"), "--results", str(tmp_path / "r.json"))
    assert_usage_error(run, "3 submissions", "alice", "dlgrade grade-all linear_attention")
    assert not (tmp_path / "r.json").exists()


def test_one_nested_submission_is_not_mistaken_for_several(tmp_path):
    nested = tmp_path / "upload" / "hw10" / "final"
    nested.mkdir(parents=True)
    (nested / "linear_attention.py").write_text("# nothing yet\n")
    (tmp_path / "upload" / "notes").mkdir()
    run = dlgrade("grade", "linear_attention", str(tmp_path / "upload"), "--results", str(tmp_path / "r.json"),
                  "--quiet")
    assert run.returncode == 0, run.stderr
    assert "using hw10/final/linear_attention.py" in (tmp_path / "r.json").read_text()


def test_empty_submission_folder_still_gets_complete_results(tmp_path):
    """Gradescope gives the submission folder: an empty one is graded (zero), not refused."""
    (tmp_path / "submission").mkdir()
    run = dlgrade("grade", "linear_attention", str(tmp_path / "submission"), "--results", str(tmp_path / "r.json"),
                  "--quiet")
    assert run.returncode == 0, run.stderr
    assert "linear_attention.py" in (tmp_path / "r.json").read_text()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_grading_exits_130_and_leaves_nothing(tmp_path, how):
    slow = tmp_path / "slow"
    shutil.copytree(EXAMPLE, slow)
    (slow / "linear_attention.py").write_text("import time\n\ndef softmax_attention(Q, K, V, causal=False):\n"
                                              "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", "linear_attention", str(slow),
                             "--results", str(tmp_path / "r.json")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    run_dir = None
    while time.monotonic() < deadline and run_dir is None and proc.poll() is None:
        run_dir = run_directory_of(proc.pid)
        time.sleep(0.1)
    assert run_dir, "the run never started"
    time.sleep(2)                                    # inside the sleeping case
    proc.send_signal(how)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip().splitlines() == ["dlgrade: interrupted"], err
    assert not os.path.lexists(run_dir), "a run directory was left behind"
    assert not (tmp_path / "r.json").exists()


def _grade_with_stderr_on_a_terminal(tmp_path, *extra) -> tuple[int, str]:
    """An empty submission: every case still runs (and fails fast), which is all progress needs."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", "linear_attention", str(tmp_path / "empty"),
                             "--results", str(tmp_path / "r.json"), *extra], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    text = read_terminal(primary, proc, 240)
    proc.wait(timeout=60)
    os.close(primary)
    return proc.returncode, text


def test_progress_on_a_terminal_each_case_as_it_finishes(tmp_path):
    code, text = _grade_with_stderr_on_a_terminal(tmp_path)
    assert code == 0
    shown = re.findall(r"(\d+)/(\d+) cases", text)
    assert shown, text
    counts = [int(done) for done, _ in shown]
    assert counts == sorted(counts) and counts[-1] == int(shown[-1][1]) and len(set(counts)) > 5


def test_no_progress_with_quiet_or_without_a_terminal(tmp_path):
    code, text = _grade_with_stderr_on_a_terminal(tmp_path, "--quiet")
    assert code == 0 and "cases" not in text
    run = dlgrade("grade", "linear_attention", str(tmp_path / "empty"), "--results", str(tmp_path / "r2.json"))
    assert run.returncode == 0 and "cases done" not in run.stderr


def test_package_warns_when_the_labels_it_packs_are_hidden(tmp_path):
    from grader.assignment import load

    data = load("minbert").data_dir
    if data is None or not (data / "cfimdb-test.txt").is_file():
        pytest.skip(f"the course's minbert data ({data}) is absent")
    run = dlgrade("package", "minbert", "--data-dir", str(data), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "cfimdb-test.txt" in warnings[0] and "hidden" in warnings[0], run.stderr
    assert (tmp_path / "minbert-autograder.zip").is_file()
