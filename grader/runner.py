"""Grade one submission: the trusted parent's side of a run.

The parent holds the reference (or golden values), the mutants and the scoring; the student's
code runs in sandbox workers that receive only call specs and inputs (grader/student.py), and
whatever the parent must parse or judge of the student's own text or data runs in a bounded
helper (grader/bounded.py).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader import bounded
from grader import submission as submission_loader
from grader.assignment import Assignment
from grader.cases import Case, StudentError, Verdict, build_inputs, case_seed, seed_everything
from grader.modules import load_module_set
from grader.paths import staff_paths
from grader.sandbox import invoke, wire
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

    @property
    def score(self) -> float:
        return sum(v.score for _, v in self.results)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for _, v in self.results)


def _fingerprint(inputs) -> str:
    """Identifies a case's inputs (a complexity case has one set per size) for the cache."""
    return hashlib.sha256(wire.encode(inputs)).hexdigest()


class GradingContext:
    """What cases see: the student's values, the expected ones, mistake hints, and a bounded
    helper for judging what the student wrote."""

    def __init__(self, assignment: Assignment, mode: str, process: StudentProcess | None,
                 submission: submission_loader.Submission | None, budget: TimeBudget | None = None,
                 public_inputs: bool = False):
        self.assignment = assignment
        self.mode = mode
        self.default_module = assignment.default_module
        self.data_dir = assignment.data_dir
        self.process = process
        self.submission = submission
        self.budget = budget or TimeBudget(assignment.total_timeout)
        self._golden = None
        self._told: dict[str, str] = {}
        # staff inputs differ from the public ones, whose expected values students hold (golden
        # files are recorded on the public inputs: `record` asks for them)
        self.salt = "" if public_inputs or mode != "staff" else assignment.staff_salt

    def seed(self, case: Case) -> int:
        return case_seed(self.assignment.name, case.name, self.salt)

    def inputs(self, case: Case, specs: dict, offset: int = 0) -> dict:
        return build_inputs(specs, self.seed(case) + offset)

    # -- student side
    def case_timeout(self, case: Case, reference_seconds: float | None = None) -> float:
        """A generous multiple of the reference's own time plus a floor, never above the cap."""
        cap = getattr(case, "timeout", None) or self.assignment.case_timeout
        if reference_seconds is None:
            return cap
        floor = getattr(case, "timeout_floor", None) or self.assignment.timeout_floor
        return min(cap, floor + self.assignment.timeout_factor * reference_seconds)

    def student_call(self, case: Case, spec: dict, inputs, measure: str = "call", options: dict | None = None,
                     timeout: float | None = None):
        request = {"op": "call", "measure": measure, "spec": spec, "inputs": inputs, "options": options or {},
                   "seed": self.seed(case)}
        return self.process.request(request, timeout or self.case_timeout(case), case.name)

    def tell_once(self, cause: str, message: str, case: Case, short: str) -> str:
        """The full message for the first case with this cause; a pointer to it afterwards."""
        first = self._told.setdefault(cause, case.name)
        return message if first == case.name else f"{short} (explained in the case {first!r})"

    # -- expected values
    def _staff_files(self) -> tuple[dict[str, Path], dict[str, Path]]:
        """(top-level support modules, the reference's .py files): the set staff code runs as."""
        support = {name: path for name, path in self.assignment.support_files.items() if "/" not in name}
        reference = {f: p for f, p in self.assignment.reference_files.items() if f.endswith(".py")}
        return support, reference

    def _support_modules(self) -> dict:
        cache = self.assignment.cache
        if "support modules" not in cache:
            support, _ = self._staff_files()
            cache["support modules"] = load_module_set(support, "support") if support else {}
        return cache["support modules"]

    def reference_modules(self) -> dict:
        cache = self.assignment.cache
        if "reference modules" not in cache:
            support, reference = self._staff_files()
            cache["reference modules"] = load_module_set({**support, **reference}, "reference",
                                                         shared=self._support_modules())
        return cache["reference modules"]

    def golden(self) -> dict:
        if self._golden is None:
            path = self.assignment.golden_path
            self._golden = wire.decode(path.read_bytes(), trusted=True) if path.is_file() else {}
        return self._golden

    def _reference(self, case: Case, inputs) -> tuple[object, float]:
        key = ("expected", case.name, _fingerprint(inputs))
        if key not in self.assignment.cache:
            start = time.perf_counter()
            value = reference_value(self.reference_modules(), case, inputs, self.default_module, self.seed(case))
            self.assignment.cache[key] = (value, time.perf_counter() - start)
        return self.assignment.cache[key]

    def expected(self, case: Case, inputs):
        if getattr(case, "expected_from", None) is not None:
            return case.expected_from(self, inputs)
        if self.mode == "staff":
            return self._reference(case, inputs)[0]
        entry = self.golden().get(case.name)
        if entry is None:
            raise StudentError("no recorded expected value for this case (staff: run `dlgrade record`)")
        return entry["expected"]

    def call_reference(self, case: Case, call, inputs):
        """The reference's value for another call of the same case, on the same inputs and seed
        (staff mode): e.g. the same method, judged as an older starter version asked for it."""
        key = ("expected", case.name, _fingerprint((call.spec(self.default_module), inputs)))
        if key not in self.assignment.cache:
            self.assignment.cache[key] = wire.plain(_reference_call(self.reference_modules(), call, inputs,
                                                                    self.default_module, self.seed(case)))
        return self.assignment.cache[key]

    def reference_seconds(self, case: Case, inputs) -> float | None:
        """How long the reference took on these inputs (staff mode), for the case's timeout."""
        if self.mode != "staff" or getattr(case, "expected_from", None) is not None:
            return None
        return self._reference(case, inputs)[1]

    def mistake_hint(self, case: Case, inputs: dict, actual) -> str:
        for name, hint, value in self._mutant_values(case, inputs):
            if case.compare(value, actual, equal_nan=True).ok:
                return f"likely mistake: {hint}"
        return ""

    def _mutant_values(self, case: Case, inputs: dict):
        if self.mode == "student":
            entry = self.golden().get(case.name) or {}
            for name, value in entry.get("mutants", {}).items():
                yield name, self.assignment.hints.get(name, name), value
            return
        expected = self.expected(case, inputs)
        for mutant, modules in self.mutant_modules():
            if case.name not in self.assignment.case_names_using(mutant.file):
                continue
            key = ("mutant", case.name, mutant.name, _fingerprint(inputs))
            if key not in self.assignment.cache:
                try:
                    self.assignment.cache[key] = reference_value(modules, case, inputs, self.default_module,
                                                                 self.seed(case))
                except Exception:
                    self.assignment.cache[key] = None
            value = self.assignment.cache[key]
            if value is not None and not case.compare(expected, value, equal_nan=True).ok:
                yield mutant.name, mutant.hint, value

    def mutant_modules(self):
        cache = self.assignment.cache
        if "mutant modules" not in cache:
            cache["mutant modules"] = []
            support, reference = self._staff_files()
            for mutant in self.assignment.mutants:
                patched = mutant.apply(Path(reference[mutant.file]).read_text())
                cache["mutant modules"].append((mutant, load_module_set(
                    {**support, **reference}, f"mutant {mutant.name}", {mutant.file: patched},
                    shared=self._support_modules())))
        return cache["mutant modules"]

    # -- judging what the student wrote, bounded in time and memory
    def judge(self, fn, *args, what: str, timeout: float = 20.0, memory_mb: int = 256):
        """`fn(*args)` in a bounded helper (see grader/bounded.py): its value or a BoundedFailure."""
        return bounded.run(fn, *args, timeout=self.budget.clip(timeout), memory_mb=memory_mb, what=what)


def _reference_call(modules: dict, call, inputs: dict, default_module: str, seed: int | None):
    seed_everything(seed if seed is not None else 0)
    return invoke.call(modules, call.spec(default_module), inputs)


def reference_value(modules: dict, case: Case, inputs: dict, default_module: str, seed: int | None = None):
    """Run staff code exactly as the student's is run (same seed, same call interpreter), and
    normalize it the same way."""
    return wire.plain(_reference_call(modules, case.call, inputs, default_module, seed))


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
    own_sandbox = sandbox is None
    sandbox = sandbox or Sandbox.start()
    run = RunDirectory()
    run_dir = run.path
    os.chmod(run_dir, 0o711)
    (run_dir / "private").mkdir(mode=0o700)
    (run_dir / "staging").mkdir(mode=0o700)
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
        hidden = staff_paths([assignment.data_dir] if assignment.data_dir else []) + [str(run_dir / "private")]
        process = StudentProcess(sandbox, {k: v for k, v in sub.files.items() if k.endswith(".py")}, support,
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
