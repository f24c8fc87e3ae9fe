"""Helpers for the grading tests: run `dlgrade grade` as a subprocess (exactly as a user
or Gradescope would), validate results.json against Gradescope's schema, and build submissions
from the reference with small, targeted modifications.

Student code must never run in the test process, so nothing here imports the grader's runner:
every submission is graded by `python -m grader grade ...` in a fresh process.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "linear_attention"
MODULE_FILE = "linear_attention.py"
REFERENCE = ROOT / "reference" / "attention" / "linear_attention.py"
REFERENCE_ANSWERS = ROOT / "reference" / "attention" / "answers.toml"
STARTER = ROOT / "assignments" / ASSIGNMENT / "starter"
SCHEMA_PATH = Path(__file__).with_name("gradescope_results.schema.json")
SANDBOX_BASE_UID = int(os.environ.get("DLGRADE_SANDBOX_UID", "61000"))
CONTROL_UID = SANDBOX_BASE_UID - 1         # outside the pool of per-run sandbox uids
GRADE_TIMEOUT = 240

CODE_TAGS = {"value", "complexity"}        # cases that run the student's code for points


@dataclass
class Graded:
    """One finished `dlgrade grade` run."""
    submission: Path
    results_path: Path
    pid: int                                # the grader process (its sandbox is titled after it)
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    results: dict

    @property
    def tests(self) -> list[dict]:
        return self.results.get("tests", [])

    @property
    def by_name(self) -> dict[str, dict]:
        return {t["name"]: t for t in self.tests}

    def code_cases(self) -> list[dict]:
        """Cases that run student code and are worth points."""
        return [t for t in self.tests if t.get("tags") and t["tags"][0] in CODE_TAGS and t["max_score"] > 0]

    def targeted(self, prefix: str, tags=CODE_TAGS) -> list[dict]:
        return [t for t in self.tests if t["name"].startswith(prefix) and t.get("tags") and t["tags"][0] in tags
                and t["max_score"] > 0]

    def others(self, prefixes: tuple[str, ...]) -> list[dict]:
        """Point-bearing cases that run student code and are not among the targeted ones."""
        return [t for t in self.code_cases() if not t["name"].startswith(prefixes)]

    @property
    def sandbox_uid(self) -> int | None:
        """The uid this run's student code ran as (results.json records the isolation used)."""
        found = re.search(r"\buid (\d+)", self.results.get("extra_data", {}).get("isolation", ""))
        return int(found.group(1)) if found else None

    def leftover_processes(self, grace_s: float = 3.0) -> list[str]:
        """Processes of this run still alive: the sandbox's (titled after the grader's PID)
        and any process of the run's sandbox uid. A process the grader killed as it ended may
        still be tearing down its memory on a loaded machine: only those still there after
        `grace_s` count (a process that survived its run never goes away by itself)."""
        deadline = time.monotonic() + grace_s
        while True:
            found = processes(sandbox_title(self.pid), uid=None)
            if self.sandbox_uid is not None:
                found += processes("", uid=self.sandbox_uid)
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def describe(self) -> str:
        lines = [f"rc={self.returncode} score={self.results.get('score')} ({self.seconds:.1f} s)"]
        for t in self.tests:
            lines.append(f"  {t.get('status')} {t.get('score')}/{t.get('max_score')} {t.get('name')}: "
                         + t.get("output", "")[:300].replace("\n", " | "))
        lines.append("stderr: " + self.stderr[-2000:])
        return "\n".join(lines)


def run_grader(submission: Path, results_path: Path, timeout: float = GRADE_TIMEOUT,
               env: dict | None = None, assignment: str = ASSIGNMENT, extra_args: tuple = ()) -> Graded:
    """Grade through the CLI in a fresh process, as a user would."""
    cmd = [sys.executable, "-m", "grader", "grade", assignment, str(submission),
           "--results", str(results_path), "--mode", "staff", *extra_args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    seconds = time.monotonic() - start
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    assert results_path.is_file(), f"no results.json written (rc={proc.returncode})\n{stderr[-3000:]}"
    results = json.loads(results_path.read_text())
    return Graded(submission, results_path, proc.pid, proc.returncode, stdout, stderr, seconds, results)


def start_grader(submission: Path, results_path: Path, env: dict | None = None) -> subprocess.Popen:
    """Start grading in the background (collect with `finish_grader`)."""
    cmd = [sys.executable, "-m", "grader", "grade", ASSIGNMENT, str(submission),
           "--results", str(results_path), "--mode", "staff"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def finish_grader(proc: subprocess.Popen, submission: Path, results_path: Path, started: float,
                  timeout: float = GRADE_TIMEOUT) -> Graded:
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the grader did not finish within {timeout} s\n{err.decode('utf-8', 'replace')[-3000:]}")
    assert results_path.is_file(), f"no results.json written (rc={proc.returncode})"
    results = json.loads(results_path.read_text())
    return Graded(submission, results_path, proc.pid, proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), time.monotonic() - started, results)


def patched(source: str, old: str, new: str) -> str:
    """Replace exactly one occurrence (fails loudly if the reference changed under us)."""
    assert source.count(old) == 1, f"expected exactly one occurrence of {old!r} in the reference"
    return source.replace(old, new)


def reference_source() -> str:
    return REFERENCE.read_text()


def make_submission(folder: Path, source: str, with_answers: bool = True) -> Path:
    """A submission folder: `linear_attention.py` (+ the reference answers.toml when it exists,
    so that symbolic-answer cases, if the assignment has them, are graded normally)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODULE_FILE).write_text(source)
    if with_answers and REFERENCE_ANSWERS.is_file():
        shutil.copy(REFERENCE_ANSWERS, folder / "answers.toml")
    return folder


MARKER_BASE = Path("/run/dlgrade-tests")


def world_writable_dir(prefix: str) -> Path:
    """A directory the sandbox uid can reach and write (pytest's tmp_path is root-only), outside
    /tmp, /var/tmp and /dev/shm, which each worker gets privately. Used for markers a hostile
    submission leaves as evidence of what it could do."""
    MARKER_BASE.mkdir(mode=0o755, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=MARKER_BASE))
    os.chmod(path, 0o777)
    return path


def sandbox_title(grader_pid: int) -> str:
    """The command line of a grader's sandbox processes (grader/sandbox/zygote.py)."""
    return f"dlgrade-sandbox {grader_pid}"


def processes(marker: str, uid: int | None) -> list[str]:
    """Live processes whose command line holds `marker`, owned by `uid` (any owner when
    None), as 'pid cmdline' strings."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uid_line = next(line for line in f if line.startswith("Uid:"))
            uids = {int(u) for u in uid_line.split()[1:]}
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, StopIteration):
            continue
        if (uid is None or uid in uids) and marker in cmdline:
            found.append(f"{entry} {cmdline}")
    return found


class Validator:
    def __init__(self):
        import jsonschema

        schema = json.loads(SCHEMA_PATH.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        self._validator = jsonschema.Draft202012Validator(schema)

    def errors(self, results: dict) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self._validator.iter_errors(results)]

    def check(self, results: dict) -> None:
        errors = self.errors(results)
        assert not errors, "results.json does not match Gradescope's schema:\n" + "\n".join(errors)


def check_honest(graded: Graded, validator: Validator) -> None:
    """What every run must give, whatever was submitted: exit 0, a schema-valid results.json
    whose score is the sum of its tests' scores, and a score within [0, max]."""
    assert graded.returncode == 0, graded.describe()
    validator.check(graded.results)
    assert graded.tests, "results.json has no tests"
    total = sum(t["score"] for t in graded.tests)
    maximum = sum(t["max_score"] for t in graded.tests)
    assert abs(graded.results["score"] - total) < 1e-6, (graded.results["score"], total)
    assert 0 <= graded.results["score"] <= maximum + 1e-9
    for t in graded.tests:
        assert 0 <= t["score"] <= t["max_score"] + 1e-9, t


# ---- shared by test_hostile_boundary.py, test_hostile_time.py and test_hostile_scratch.py ----

def replace_function(source: str, function: str, body: str) -> str:
    """Replace the body of a top-level function of `source` (its signature and docstring stay)."""
    import textwrap

    lines = source.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {function}("))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("def ", "class "))), len(lines))
    assert lines[start + 1].strip().startswith('"""')
    doc_end = start + 1
    if lines[doc_end].strip().count('"""') < 2:
        doc_end = next(i for i in range(start + 2, end) if lines[i].rstrip().endswith('"""'))
    new_body = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ")
    return "".join(lines[:doc_end + 1]) + new_body + "\n\n" + "".join(lines[end:]).lstrip("\n")


def assert_only_these_fail(graded: Graded, failing: dict[str, tuple[str, ...]]) -> None:
    """The cases named in `failing` (exact names) fail with every regex of theirs in their
    output; every other point-bearing case that runs student code passes; no case anywhere
    reports an internal grader error."""
    by_name = graded.by_name
    for name, needles in failing.items():
        assert name in by_name, f"no case named {name!r}:\n{graded.describe()}"
        test = by_name[name]
        assert test["status"] == "failed" and test["score"] == 0, f"{name!r} did not fail:\n{graded.describe()}"
        for needle in needles:
            assert re.search(needle, test["output"]), f"{needle!r} not in the output of {name!r}:\n{test['output']}"
    others = [t for t in graded.code_cases() if t["name"] not in failing]
    assert others, "every case was targeted: nothing shows that the others are still graded"
    wrong = [t["name"] for t in others if not (t["status"] == "passed" and t["score"] == t["max_score"])]
    assert not wrong, f"cases that were not targeted did not pass: {wrong}\n{graded.describe()}"
    internal = [t["name"] for t in graded.tests if "internal grader error" in t["output"]]
    assert not internal, f"internal grader errors in {internal}\n{graded.describe()}"


def assignment_copy(base: Path, limits: dict | None = None, keep: tuple[str, ...] | None = None,
                    answers: bool = True) -> Path:
    """A root for DLGRADE_ROOT holding a copy of the assignment (and the reference, linked):
    `limits` replaces values of the manifest's [limits]; `keep` (case names) drops every other
    case; `answers=False` drops the symbolic-answer cases (questions.py)."""
    import tomllib

    root = Path(tempfile.mkdtemp(prefix="dlgrade-root-", dir=base))
    target = root / "assignments" / ASSIGNMENT
    shutil.copytree(ROOT / "assignments" / ASSIGNMENT, target)
    os.symlink(ROOT / "reference", root / "reference")
    if limits:
        manifest = target / "manifest.toml"
        text = manifest.read_text()
        current = tomllib.loads(text).get("limits", {})
        block = "[limits]\n" + "".join(f"{k} = {v!r}\n" for k, v in {**current, **limits}.items())
        text = re.sub(r"(?ms)^\[limits\]\n.*?(?=^\[|\Z)", lambda _: block + "\n", text)
        manifest.write_text(text)
        assert tomllib.loads(manifest.read_text())["limits"] == {**current, **limits}
    if keep is not None:
        with open(target / "cases.py", "a") as f:
            f.write(f"\n\nCASES = [c for c in CASES if c.name in {sorted(keep)!r}]\n")
    if not answers:
        (target / "questions.py").unlink(missing_ok=True)
    return root


def run_directory_of(pid: int) -> str | None:
    """The run directory whose lock the process `pid` holds open, if any."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith("/.dlgrade-lock") and "/dlgrade-run-" in target:
            return os.path.dirname(target)
    return None


_MEASURE = (
    "import json, resource, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[2:])\n"
    "rc = proc.wait()\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump({'pid': proc.pid, 'maxrss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, f)\n"
    "sys.exit(rc)\n"
)


def run_grader_measured(submission: Path, results_path: Path, timeout: float = GRADE_TIMEOUT,
                        env: dict | None = None) -> tuple[Graded, int]:
    """`run_grader`, and the peak resident memory (bytes) of the grader and of every process it
    started and waited for (its largest one: the parent itself, a worker or a helper)."""
    measure = results_path.with_name(results_path.name + ".rss")
    cmd = [sys.executable, "-c", _MEASURE, str(measure), sys.executable, "-m", "grader", "grade", ASSIGNMENT,
           str(submission), "--results", str(results_path), "--mode", "staff"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)          # the wrapper and the grader: the group we started
        proc.communicate()
        raise
    seconds = time.monotonic() - start
    assert results_path.is_file(), f"no results.json written (rc={proc.returncode})\n{err.decode()[-3000:]}"
    measured = json.loads(measure.read_text())
    graded = Graded(submission, results_path, measured["pid"], proc.returncode, out.decode("utf-8", "replace"),
                    err.decode("utf-8", "replace"), seconds, json.loads(results_path.read_text()))
    return graded, measured["maxrss_kb"] * 1024


def read_terminal(fd: int, proc, timeout: float) -> str:
    """Everything a process writes to the pseudo-terminal `fd` until it exits (or `timeout`)."""
    import select

    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


def summarization_log(part: int) -> dict:
    """What the course's notebook (part 1 or 2) writes as submission_logs.json when the reference
    plays the student's code: its logging cells replayed (assignments/summarization/notebook_logs.py)."""
    import importlib.util

    from reference.seq2seq import transformer

    path = ROOT / "assignments" / "summarization" / "notebook_logs.py"
    spec = importlib.util.spec_from_file_location("summarization_notebook_logs", path)
    logs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(logs)
    entries = logs.part1_log_entries(transformer) if part == 1 else logs.part2_log_entries(transformer)
    return {"time": 1700000000.0, **entries}
