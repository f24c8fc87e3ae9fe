"""The total time limit is hard, and one hung function costs one timeout.

Each test grades a copy of the assignment with tight limits (DLGRADE_ROOT points the grader
at a temporary root holding the copy; the `grader` package is still this checkout's), so that
timeouts cost seconds. The slow-but-correct submission mostly sleeps: it is started in the
background when this module begins and collected last.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gradingkit import (
    ROOT,
    assert_only_these_fail,
    assignment_copy,
    check_honest,
    finish_grader,
    make_submission,
    reference_source,
    replace_function,
    run_grader,
    start_grader,
)

REF = reference_source()
FUNCTIONS = ("softmax_attention", "polynomial_feature_map", "random_feature_map",
             "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention")
STARTUP_SLACK_S = 15      # interpreter, torch, the fork server, the reference: before the budget starts

KERNEL_CASES = ("kernel_attention (elu + 1 features)", "kernel_attention, batch x heads, positive random features",
                "kernel_attention gradients", "kernel_attention is linear in N")
CAUSAL_CASES = ("causal_kernel_attention (elu + 1 features)", "causal_kernel_attention, N = 200, batch x heads",
                "causal_kernel_attention gradients", "causal_kernel_attention is linear in N")


def case_names(root) -> list[str]:
    """Every case the assignment under `root` defines (asked from a fresh process)."""
    code = ("import json; from grader import assignment; "
            "print(json.dumps([c.name for c in assignment.load('linear_attention').cases]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "DLGRADE_ROOT": str(root)},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---- B1: every function sleeps just under its timeout; the total limit must still hold ------

SLOW_LIMITS = {"case_timeout_s": 6, "case_timeout_floor_s": 5, "reference_time_factor": 1, "total_timeout_s": 20}
SLOW_CALL_S = 3.0         # under the case timeout (5 s + the reference's time), with room for a loaded machine
SLOW_IMPORT_S = 0.5

SLOW = textwrap.dedent(f'''

    # ---- hostile: correct, but every call (and the import) sleeps just under its timeout ----
    import functools as _functools
    import time as _time

    _time.sleep({SLOW_IMPORT_S})
    _depth = [0]


    def _slow(fn):
        @_functools.wraps(fn)
        def wrapped(*args, **kwargs):
            if _depth[0] == 0:          # once per graded call (softmax_kernel calls random_feature_map)
                _time.sleep({SLOW_CALL_S})
            _depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                _depth[0] -= 1
        return wrapped


    for _name in {FUNCTIONS!r}:
        globals()[_name] = _slow(globals()[_name])
''')


@pytest.fixture(scope="module")
def slow_job(tmp_path_factory):
    base = tmp_path_factory.mktemp("slow")
    root = assignment_copy(base, SLOW_LIMITS)
    folder = make_submission(base / "submission", REF + SLOW)
    results = base / "results.json"
    env = {"DLGRADE_ROOT": str(root)}
    started_at = time.time()
    proc = start_grader(folder, results, env=env)
    started = time.monotonic()
    names = case_names(root)          # while it grades
    yield proc, folder, results, started, started_at, names
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_slow_run_early(slow_job):
    """Autouse: the sleeping submission is graded in the background from the module's start."""


# ---- B2: an infinite loop in a function that several cases call ----------------------------

LOOP_LIMITS = {"case_timeout_s": 8, "case_timeout_floor_s": 6, "reference_time_factor": 1, "total_timeout_s": 120}


def test_infinite_loop_costs_one_timeout(tmp_path, schema):
    root = assignment_copy(tmp_path, LOOP_LIMITS)
    source = replace_function(REF, "kernel_attention", "while True:\n    pass\n")
    line = next(i for i, text in enumerate(source.splitlines(), start=1) if text == "    while True:")
    folder = make_submission(tmp_path / "submission", source)
    graded = run_grader(folder, tmp_path / "results.json", env={"DLGRADE_ROOT": str(root)})
    check_honest(graded, schema)
    # the loop is stopped on its `while` or its `pass` line, whichever it was executing
    where = rf"kernel_attention \(linear_attention\.py line (?:{line}|{line + 1})\)"
    first, *later = KERNEL_CASES
    assert_only_these_fail(graded, {first: (rf"timed out: no result within [\d.]+ s in {where}",),
                                    **{name: (rf"not run: {where}", re.escape(repr(first)), "is not run again")
                                       for name in later}})
    timeout = float(re.search(r"no result within ([\d.]+) s", graded.by_name[first]["output"]).group(1))
    assert timeout <= LOOP_LIMITS["case_timeout_s"]
    assert graded.seconds < STARTUP_SLACK_S + 2.5 * timeout, \
        f"{graded.seconds:.1f} s for one hung function with a {timeout:g} s timeout:\n{graded.describe()}"
    assert graded.leftover_processes() == []


# ---- B3 + B4: a loop in a helper module; loops that hide their stack ------------------------

HELPER_MODULE = "loop_helpers"
HELPER = textwrap.dedent('''
    """A student's own helper module, imported by linear_attention.py."""


    def spin(x):
        total = 0
        while True:
            total += 1
''')

HIDDEN_STACKS = textwrap.dedent(f'''

    # ---- hostile: loops, one in a helper module, two that refuse to show their stack ----
    import faulthandler as _faulthandler
    import signal as _signal

    import {HELPER_MODULE} as _helpers


    def causal_kernel_attention(Q, K, V, feature_map, chunk_size=64):
        return _helpers.spin(Q)


    def random_feature_map(X, W):
        _signal.signal(_signal.SIGUSR2, _signal.SIG_IGN)     # the grader's stack request is ignored
        while True:
            pass


    def softmax_kernel_feature_map(X, W, sigma2):
        _faulthandler.disable()
        _faulthandler.unregister(_signal.SIGUSR2)
        while True:
            pass
''')

# floors of a few seconds: a fresh worker's first recorded (complexity) call alone takes 1-2 s
HIDING_LIMITS = {"case_timeout_s": 7, "case_timeout_floor_s": 5, "reference_time_factor": 1, "total_timeout_s": 60}


def test_loop_in_helper_module_and_hidden_stacks(tmp_path, schema):
    root = assignment_copy(tmp_path, HIDING_LIMITS)
    folder = make_submission(tmp_path / "submission", REF + HIDDEN_STACKS)
    (folder / f"{HELPER_MODULE}.py").write_text(HELPER)
    line = next(i for i, text in enumerate(HELPER.splitlines(), start=1) if text.strip() == "total += 1")
    graded = run_grader(folder, tmp_path / "results.json", env={"DLGRADE_ROOT": str(root)})
    check_honest(graded, schema)
    # the helper's own name and file (the line may be the loop's test or its body)
    where = rf"spin \({HELPER_MODULE}\.py line (?:{line}|{line - 1})\)"
    first, *later = CAUSAL_CASES
    assert_only_these_fail(graded, {
        first: (rf"timed out: no result within [\d.]+ s in {where}",),
        **{name: (rf"not run: {where}", re.escape(repr(first)), "is not run again") for name in later},
        # no stack: a timeout all the same, without a name
        "random_feature_map": (r"timed out: no result within [\d.]+ s",),
        "softmax_kernel_feature_map": (r"timed out: no result within [\d.]+ s",),
    })
    timeouts = 1 + 2    # causal_kernel_attention once, each stackless function once (one case each)
    limit = HIDING_LIMITS["case_timeout_s"]
    assert graded.seconds < STARTUP_SLACK_S + 10 + (timeouts + 1) * limit, graded.describe()
    assert graded.seconds < HIDING_LIMITS["total_timeout_s"] + STARTUP_SLACK_S
    assert graded.leftover_processes() == []


# ---- last: collect the sleeping submission ----------------------------------------------------

def test_total_time_limit_is_hard(slow_job, schema):
    proc, folder, results, started, started_at, names = slow_job
    graded = finish_grader(proc, folder, results, started)
    check_honest(graded, schema)
    total = SLOW_LIMITS["total_timeout_s"]
    # collected last: the run ended when it wrote results.json (its very last step)
    seconds = results.stat().st_mtime - started_at
    assert seconds < total + STARTUP_SLACK_S, f"{seconds:.1f} s with a {total} s limit\n{graded.describe()}"
    assert [t["name"] for t in graded.tests] == names, "results.json does not list every case"
    code = graded.code_cases()
    ran = [t for t in code if t["status"] == "passed"]
    stopped = [t for t in code if t["status"] == "failed"]
    # the code is right, only slow: what ran in time passed; the rest hit the total limit
    assert len(ran) >= 2, graded.describe()
    assert stopped and all("total time limit" in t["output"] for t in stopped), graded.describe()
    assert code.index(stopped[0]) == len(ran), "a case passed after the limit was reached"
    # cases that do not run student code are not judged after the limit either
    later = graded.tests[graded.tests.index(stopped[-1]) + 1:]
    assert all(t["max_score"] == 0 or "total time limit" in t["output"] for t in later), graded.describe()
    assert graded.leftover_processes() == []
