"""Grade one submission: the trusted parent's side of a run.

The parent holds the reference (or golden values), the mutants and the scoring; the student's
code runs in sandbox workers that receive only call specs and inputs.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader import submission as submission_loader
from grader.assignment import Assignment
from grader.cases import Case, StudentError, Verdict, case_seed, build_inputs
from grader.complexity import growth_exponent
from grader.modules import load_module_set
from grader.paths import staff_paths
from grader.sandbox import invoke, wire
from grader.sandbox.isolation import Limits
from grader.sandbox.uids import SandboxUid
from grader.sandbox.zygote import Sandbox, WorkerConfig, WorkerDied, WorkerTimeout



@dataclass
class Report:
    assignment: Assignment
    mode: str                                    # "staff" or "student"
    results: list[tuple[Case, Verdict]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    isolation: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(v.score for _, v in self.results)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for _, v in self.results)


class StudentProcess:
    """One live worker at a time; a fresh one (from the zygote) after a timeout or crash."""

    def __init__(self, sandbox: Sandbox, assignment: Assignment, files: dict[str, bytes],
                 support: dict[str, bytes], helpers: dict[str, bytes], modules: list[str], run_dir: Path,
                 sandbox_uid: int | None):
        self.sandbox = sandbox
        self.sandbox_uid = sandbox_uid
        self.assignment = assignment
        self.files = {**helpers, **support, **files}
        self.modules = modules
        self.run_dir = run_dir
        self.hidden = staff_paths() + [str(run_dir / "private")]
        self.worker = None
        self.import_failure: str | None = None          # the whole import failed (exit, hang)
        self.module_failures: dict[str, str] = {}       # module -> why it could not be imported
        self.import_output = ""
        self.isolation = ""
        self.spawned = 0

    def _scratch(self) -> str:
        scratch = self.run_dir / f"worker{self.spawned}"
        scratch.mkdir(mode=0o700)
        for name, data in self.files.items():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).write_bytes(data)
        if self.sandbox_uid is not None:
            for path in [scratch, *scratch.rglob("*")]:
                os.chown(path, self.sandbox_uid, self.sandbox_uid)
        return str(scratch)

    def _start(self, timeout: float):
        self.spawned += 1
        config = WorkerConfig(
            scratch=self._scratch(),
            output_path=str(self.run_dir / "private" / f"worker{self.spawned}.out"),
            staging=str(self.run_dir / "staging"),
            hidden_paths=self.hidden,
            limits=Limits(memory_mb=self.assignment.memory_mb),
            sandbox_uid=self.sandbox_uid,
            namespaces=os.environ.get("DLGRADE_NAMESPACES", "1") != "0",
        )
        worker = self.sandbox.spawn(config)
        self.isolation = worker.isolation + _fallback_warnings(worker.isolation, self.hidden)
        try:
            reply = worker.request({"op": "import", "modules": self.modules}, timeout)
        except WorkerTimeout:
            self.import_failure = f"importing the submission took longer than {timeout:g} s (it is imported once; move long-running code under `if __name__ == '__main__':`)"
            raise StudentError(self.import_failure)
        except WorkerDied as exc:
            self.import_failure = f"the process ended while importing the submission ({exc}); is there a bare exit() or os._exit() at import time?"
            raise StudentError(self.import_failure)
        self.module_failures = {}
        for module, outcome in reply.get("value", {}).items():
            if not outcome.get("ok"):
                self.module_failures[module] = _import_failure_message(module, outcome.get("error", {}))
        self.import_output = worker.student_output()
        self.worker = worker

    def request(self, message: dict, timeout: float):
        """Returns (value, printed output) or raises StudentError with a student-facing reason."""
        if self.import_failure:
            raise StudentError(self.import_failure)
        if self.worker is None or not self.worker.alive:
            self._start(timeout)
        spec = message.get("spec") or {}
        for module in spec.get("needs") or [spec.get("module")]:
            if module in self.module_failures:
                exc = StudentError(self.module_failures[module])
                exc.output = self.import_output
                raise exc
        try:
            reply = self.worker.request(message, timeout)
        except WorkerTimeout:
            exc = StudentError(f"timed out: no result within {timeout:g} s (the case was stopped; other cases still ran)")
            exc.output = self.worker.student_output()
            raise exc
        except WorkerDied as exc:
            err = StudentError(f"the process running your code ended unexpectedly: {exc}"
                               + (" (likely out of memory: the limit is "
                                  f"{self.assignment.memory_mb} MB)" if "SIGKILL" in str(exc) or "SIGSEGV" in str(exc) else ""))
            err.output = self.worker.student_output()
            raise err
        printed = self.worker.student_output()
        if not reply["ok"]:
            error = reply.get("error") or {}
            tb = error.get("traceback", "") if type(error) is dict else ""
            exc = StudentError(f"your code raised {str(error.get('message', 'an error'))}" + (f"\n{tb}" if tb else ""))
            exc.output = printed
            raise exc
        return reply.get("value"), printed

    def close(self):
        if self.worker is not None:
            self.worker.kill()


def _fingerprint(inputs) -> str:
    """Identifies a case's inputs (a complexity case has one set per size) for the cache."""
    return hashlib.sha256(wire.encode(inputs)).hexdigest()


def _import_failure_message(module: str, error: dict) -> str:
    """Why `module` could not be imported, in the student's terms; other files still run."""
    message = str(error.get("message", "import failed"))
    if error.get("type") == "ModuleNotFoundError":
        found = re.search(r"No module named '([^']+)'", message)
        missing = found.group(1) if found else "?"
        if missing == module:
            return f"{module}.py was not found in the submission"
        return (f"importing {module}.py failed: it imports {missing!r}, which the grading environment does not have "
                f"(remove that import, or use only torch, numpy and the course's files); the cases of your other files "
                f"are graded as usual\n{error.get('traceback', '')}").rstrip()
    return f"importing {module}.py failed: {message}\n{error.get('traceback', '')}".rstrip()


def _closed_to_others(path: str) -> str | None:
    """The first directory on the way to `path` that a stranger cannot enter, if any."""
    current = os.path.abspath(path)
    while True:
        if os.path.isdir(current) and not os.stat(current).st_mode & 0o001:
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _fallback_warnings(isolation: str, hidden: list[str]) -> str:
    """Without a mount namespace only file modes stand between the sandbox uid and the staff
    files, and the Python runtime must be readable to it. Say (in the staff-only isolation
    record) where either is wrong; run_autograder sets both up on Gradescope."""
    if "staff-files-hidden" in isolation or "uid " not in isolation:
        return ""
    warnings = []
    exposed = [p for p in hidden if os.path.isdir(p) and os.stat(p).st_mode & 0o005]
    if exposed:
        warnings.append(f"readable by the sandbox uid: {', '.join(exposed)}")
    closed = _closed_to_others(os.path.dirname(os.__file__))
    if closed:
        warnings.append(f"the Python runtime is behind {closed}, which the sandbox uid cannot enter: "
                        "modules that student code imports lazily will fail")
    return "".join(f"; WARNING: {w}" for w in warnings)


class GradingContext:
    """What cases see: the student's values, the expected ones, and mistake hints."""

    def __init__(self, assignment: Assignment, mode: str, process: StudentProcess,
                 submission: submission_loader.Submission):
        self.assignment = assignment
        self.mode = mode
        self.default_module = assignment.default_module
        self.data_dir = assignment.data_dir
        self.process = process
        self.submission = submission
        self._golden = None
        self._answers = None

    # -- student side
    def student_call(self, case: Case, spec: dict, inputs):
        timeout = case.timeout or self.assignment.case_timeout
        return self.process.request({"op": "call", "spec": spec, "inputs": inputs,
                                     "seed": case_seed(self.assignment.name, case.name)}, timeout)

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

    def expected(self, case: Case, inputs: dict):
        if getattr(case, "expected_from", None) is not None:
            return case.expected_from(self, inputs)
        if self.mode == "staff":
            key = ("expected", case.name, _fingerprint(inputs))
            if key not in self.assignment.cache:
                self.assignment.cache[key] = reference_value(self.reference_modules(), case, inputs, self.default_module)
            return self.assignment.cache[key]
        entry = self.golden().get(case.name)
        if entry is None:
            raise StudentError("no recorded expected value for this case (staff: run `dlgrade record`)")
        return entry["expected"]

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
                    self.assignment.cache[key] = reference_value(modules, case, inputs, self.default_module)
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

    # -- symbolic answers
    def answer_verdict(self, question):
        if self.mode != "staff":
            return None
        if self._answers is None:
            from grader.symbolic import grade_answers
            raw = self.submission.files.get(self.assignment.answers_file or "", b"")
            self._answers = {v.question_id: v for v in grade_answers(raw, self.assignment.questions)}
        return self._answers.get(question.id)

    # -- GPU timing (only reached when CUDA is present)
    def gpu_timing(self, case) -> Verdict:
        seed = case_seed(self.assignment.name, case.name)
        inputs = [build_inputs(case.inputs_at(n), seed + i) for i, n in enumerate(case.sizes)]
        spec = dict(case.call.spec(self.default_module), cuda_repeats=case.repeats)
        try:
            student, _ = self.student_call(case, spec, inputs)
        except StudentError as exc:
            return case.failed(f"GPU timing failed: {exc}")
        reference = invoke.cuda_times(self.reference_modules(), spec, inputs, case.repeats) if self.mode == "staff" else None
        lines = [f"N={n}: student {s:.3f} ms" + (f", reference {r:.3f} ms, ratio {s / r:.2f}" if reference else "")
                 for n, s, r in zip(case.sizes, student, reference or [None] * len(student))]
        exponent = growth_exponent(list(case.sizes), student)
        lines.append(f"student time grows like N^{exponent:.2f}")
        extra = {"student_ms": student, "reference_ms": reference, "time_exponent": round(exponent, 3)}
        return Verdict(case.points, case.points, "\n".join(lines), extra=extra)


def reference_value(modules: dict, case: Case, inputs: dict, default_module: str):
    """Run staff code exactly as the student's is run, and normalize it the same way."""
    torch.manual_seed(case_seed("", case.name))
    return wire.plain(invoke.call(modules, case.call.spec(default_module), inputs))


def choose_mode(assignment: Assignment, requested: str | None) -> str:
    if requested in ("staff", "student"):
        return requested
    return "staff" if assignment.reference_available() else "student"


def grade(assignment: Assignment, submission_path: str | Path, sandbox: Sandbox | None = None,
          mode: str | None = None, only: set[str] | None = None) -> Report:
    """Grade one submission. Start `sandbox` before loading anything secret (the CLI does).
    `only`: names of the cases to grade (verify reruns just what a patched file can change)."""
    start = time.monotonic()
    mode = choose_mode(assignment, mode)
    report = Report(assignment, mode)
    sub = submission_loader.load(submission_path, assignment.files, assignment.optional_files, assignment.notebook_module)
    report.notes.extend(sub.notes)
    own_sandbox = sandbox is None
    sandbox = sandbox or Sandbox.start()
    run_dir = Path(tempfile.mkdtemp(prefix="dlgrade-run-"))
    os.chmod(run_dir, 0o711)
    (run_dir / "private").mkdir(mode=0o700)
    (run_dir / "staging").mkdir(mode=0o700)
    cases = assignment.cases if only is None else [c for c in assignment.cases if c.name in only]
    modules = sorted({name for c in cases if getattr(c, "call", None)
                      for name in (c.call.module or assignment.default_module, *c.call.needs)})
    # as root, the student runs as a uid of this run's own (see grader/sandbox/uids.py)
    uid_lock = SandboxUid.acquire() if os.geteuid() == 0 else None
    support = assignment.support_sources()
    shadowed = sorted(set(sub.helpers) & set(support))
    if shadowed:
        report.notes.append(f"not used: your {', '.join(shadowed)} (the grader provides its own copy of the course's support files)")
    process = StudentProcess(sandbox, assignment, {k: v for k, v in sub.files.items() if k.endswith(".py")},
                             support, sub.helpers, modules, run_dir, uid_lock.uid if uid_lock else None)
    ctx = GradingContext(assignment, mode, process, sub)
    try:
        for case in cases:
            if mode == "student" and not case.public:
                continue
            if time.monotonic() - start > assignment.total_timeout:
                verdict = case.failed(f"not run: the total time limit of {assignment.total_timeout:g} s was reached")
            else:
                try:
                    verdict = case.run(ctx)
                except StudentError as exc:
                    verdict = case.failed(str(exc), student_output=getattr(exc, "output", ""))
                except Exception as exc:  # a grader bug must not cost the student a results.json
                    verdict = case.failed(f"internal grader error on this case ({type(exc).__name__}: {exc}); "
                                          "please tell the course staff")
            report.results.append((case, verdict))
    finally:
        process.close()
        if uid_lock:
            uid_lock.release()
        if own_sandbox:
            sandbox.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    report.isolation = process.isolation
    report.seconds = time.monotonic() - start
    return report
