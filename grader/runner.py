"""Grade one submission: the grading loop of the trusted parent.

Its parts live apart: the student's sandboxed process (grader/student.py), the staff values
(grader/oracle.py), what a case sees of them (grader/context.py), and the run directory and
isolation (grader/sandbox/). Here: select the cases of the mode, run each, apply the gates.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader import submission as submission_loader
from grader.assignment import Assignment
from grader.cases import Case, StudentError, Verdict
from grader.context import GradingContext
from grader.oracle import Oracle, cache_root
from grader.paths import staff_paths
from grader.sandbox.cleanup import RunDirectory
from grader.sandbox.uids import SandboxUid
from grader.sandbox.zygote import Sandbox
from grader.student import StudentProcess, TimeBudget


@dataclass
class Report:
    assignment: Assignment
    mode: str                                    # "staff" or "student"
    results: list[tuple[Case, Verdict]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)   # what this mode does not grade, and why
    isolation: str = ""
    seconds: float = 0.0
    staff_values_computed: int = 0               # staff calls this run made (the rest were cached)
    student_peak_mb: float | None = None         # the sandbox workers' peak resident size (wait4)

    @property
    def score(self) -> float:
        return sum(v.score for _, v in self.results)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for _, v in self.results)


def choose_mode(assignment: Assignment, requested: str | None) -> str:
    if requested in ("staff", "student"):
        return requested
    return "staff" if assignment.reference_available() else "student"


def _left_out(cases: list[Case], why: str) -> str:
    points = sum(c.points for c in cases)
    return f"{len(cases)} case(s) worth {points:g} points not graded here: {why}"


def _selected(assignment: Assignment, mode: str, only: set[str] | None, report: Report) -> list[Case]:
    cases = assignment.cases if only is None else [c for c in assignment.cases if c.name in only]
    if mode == "student":
        hidden = [c for c in cases if not c.public]
        staff_only = [c for c in cases if c.public and c.staff_only]
        if hidden:
            report.left_out.append(_left_out(hidden, "hidden cases run only on Gradescope"))
        if staff_only:
            report.left_out.append(_left_out(staff_only, "checked only by the staff grader (" +
                                             ", ".join(sorted({type(c).__name__ for c in staff_only})) + ")"))
        cases = [c for c in cases if c.public and not c.staff_only]
    return cases


def _apply_gates(results: list[tuple[Case, Verdict]], ctx: GradingContext) -> None:
    """Cases whose points depend on other cases (run after all of them, in any order)."""
    verdicts = {case.name: verdict for case, verdict in results}
    for i, (case, verdict) in enumerate(results):
        results[i] = (case, case.gate(verdict, verdicts, ctx))


def grade(assignment: Assignment, submission_path: str | Path, sandbox: Sandbox | None = None,
          mode: str | None = None, only: set[str] | None = None, progress=None) -> Report:
    """Grade one submission. Start `sandbox` before loading anything secret (the CLI does).
    `only`: names of the cases to grade (verify reruns just what a patched file can change).
    `progress(case, verdict, done, total)` is called as each case finishes."""
    budget = TimeBudget(assignment.total_timeout)
    mode = choose_mode(assignment, mode)
    report = Report(assignment, mode)
    computed_before = Oracle.of(assignment).computed if mode == "staff" else 0
    own_sandbox = sandbox is None
    sandbox = sandbox or Sandbox.start()
    run = RunDirectory()
    run_dir = run.path
    private, _ = run.for_sandbox()
    # as root, the student runs as a uid of this run's own (see grader/sandbox/uids.py)
    uid_lock = SandboxUid.acquire() if os.geteuid() == 0 else None
    uid = uid_lock.uid if uid_lock else None
    process = None
    try:
        sub = submission_loader.load(submission_path, assignment.files, assignment.optional_files,
                                     assignment.notebook_module, budget=budget)
        report.notes.extend(sub.notes)
        cases = _selected(assignment, mode, only, report)
        modules = sorted({name for c in cases if getattr(c, "call", None)
                          for name in c.call.modules(assignment.default_module)})
        support = assignment.support_sources()
        shadowed = sorted(set(sub.helpers) & set(support))
        if shadowed:
            report.notes.append(f"not used: your {', '.join(shadowed)} (the grader provides its own copy of the "
                                "course's support files)")
        hidden = staff_paths([assignment.data_dir, cache_root()]) + [str(private)]
        sandboxed = {k: v for k, v in sub.files.items() if k.endswith(".py") or k in assignment.submission_data}
        process = StudentProcess(sandbox, sandboxed, support,
                                 sub.helpers, modules, run_dir, uid, assignment.memory_mb, hidden, budget,
                                 import_timeout=assignment.case_timeout)
        ctx = GradingContext(assignment, mode, process, sub, budget)
        for case in cases:
            verdict = _run_case(case, ctx)
            report.results.append((case, verdict))
            if progress:
                progress(case, verdict, len(report.results), len(cases))
        _apply_gates(report.results, ctx)
    finally:
        if process is not None:
            process.close()
        if uid_lock:
            uid_lock.release()
        if own_sandbox:
            sandbox.close()
        run.close()
    report.isolation = process.isolation if process else ""
    report.student_peak_mb = process.peak_rss_mb if process else None
    report.staff_values_computed = Oracle.of(assignment).computed - computed_before if mode == "staff" else 0
    report.seconds = time.monotonic() - budget.start
    return report


def _run_case(case: Case, ctx: GradingContext) -> Verdict:
    if ctx.budget.spent():
        return case.failed(ctx.tell_once("budget", f"not run: the total time limit of {ctx.budget.total:g} s was "
                                         "reached", case, "not run: the total time limit was reached"))
    try:
        return case.run(ctx)
    except StudentError as exc:
        return case.failed(str(exc), student_output=getattr(exc, "output", ""))
    except Exception as exc:  # a grader bug must not cost the student a results.json
        return case.failed(f"internal grader error on this case ({type(exc).__name__}: {exc}); "
                           "please tell the course staff")
