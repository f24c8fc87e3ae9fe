"""The class report: the statistics staff read (named mistakes by frequency, pass rates, limits
hit, identical submissions), and the page itself loaded in a real headless Chromium (Debian's
package, which `make test` installs as root): it renders, its script runs, the console shows no
error, and a screenshot goes to the test artifacts (test-artifacts/report.png)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from batchkit import REFERENCE, ROOT, make_class

from grader.batch.grade_all import grade_all
from grader.batch.gradebook import Gradebook
from grader.batch.report import render, statistics

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    source = make_class(root / "class")
    shutil.copytree(source / "ada", source / "ada-twin")        # an identical submission
    out = root / "grading"
    grade_all("linear_attention", source, out, jobs=2)
    return out


def test_the_statistics_name_the_mistakes_limits_and_identical_submissions(graded):
    with Gradebook(graded / "gradebook.sqlite") as book:
        stats = statistics(book.current("linear_attention"))
    assert stats["students"] == 6
    hints = {hint: count for hint, count, _ in stats["mistakes"]}
    assert any("causal prefix off by one" in hint for hint in hints), hints      # the example's mistake
    assert ["ada", "ada-twin"] in stats["identical"]
    rates = dict(stats["pass_rates"])
    assert 0 < rates["softmax_attention"] < 1
    assert stats["grader_failures"] == []
    assert {r["student"] for r in stats["rows"]} == {"ada", "ada-twin", "ben", "cleo", "dan", "fay"}


def test_the_page_renders_in_headless_chromium_without_console_errors(graded, tmp_path):
    browser = shutil.which("chromium")
    assert browser, "Chromium is not installed: `make test` installs Debian's chromium package as root"
    page = render("linear_attention", graded / "gradebook.sqlite", tmp_path / "report.html")
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html   # nothing to fetch
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
               "--window-size=1200,2600"]
    dom = subprocess.run(command + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert '<body data-ready="yes">' in dom.stdout, "the page's script did not run"
    errors = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not errors, errors
    assert dom.stdout.count("data:image/png;base64,") == 3 and "causal prefix off by one" in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(command + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_report_command_writes_beside_the_gradebook(graded):
    done = subprocess.run([sys.executable, "-m", "grader", "report", "linear_attention", "--db",
                           str(graded / "gradebook.sqlite")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (graded / "report.html").is_file()
    assert "no gradebook" in subprocess.run([sys.executable, "-m", "grader", "report", "linear_attention",
                                             "--db", str(graded / "none.sqlite")], cwd=ROOT, capture_output=True,
                                            text=True).stderr
