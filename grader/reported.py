"""Self-reported values: what the student's own notebook computed and saved, graded as data.

CS182's notebooks save their outputs on the course's inputs (`torch.save({'output': {...}},
'autograder.pt')`) and their final accuracies, and students upload that file. It is data the
student produced, not code the grader ran, and the feedback says so. Two kinds of case:

    ReportedOutput(name, points, key="patchify", call=Call(...), inputs_from=lambda course: {...})
        an output saved on the course's inputs file (`autograder_student.pt`, of the form
        {'input': {...}, 'weights': {...}}), graded exactly as the course does: against the
        reference on those inputs, with the course's metric. Then the student's own code is run
        in the sandbox on the same inputs: an entry that the submitted code does not reproduce
        (a copied or edited file) earns nothing, and the feedback says which it is.
    ReportedScore(name, points, key="vit_acc", what="...")
        a number the notebook reports after training (an accuracy): passed at or above the
        manifest's threshold. The grader cannot check it and says so.

The file is opened only in the sandbox child (grader/sandbox/reported.py); the parent receives
one entry at a time as plain data. The manifest configures it:

    [sandbox]
    submission_data = ["autograder.pt"]      # the child gets a copy of the submitted file
    [reported]
    file = "autograder.pt"
    course_inputs = ""                       # the course's inputs file; DLGRADE_COURSE_INPUTS wins
                                             # (relative: in the data directory, then the repository)
    [reported.thresholds]
    vit_acc = 0.65

Without a course inputs file the ReportedOutput cases are skipped (0 of 0 points, with a
message for staff): expected values need the inputs the student's file was computed on.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from grader import bounded
from grader.cases import Call, Case, Context, StudentError
from grader.compare import Comparison, Tolerance, compare
from grader.paths import ROOT
from grader.verdict import Verdict

SELF_REPORTED = "self-reported"


def settings(assignment) -> dict:
    return assignment.manifest.get("reported", {})


def reported_file(assignment) -> str:
    return settings(assignment).get("file", "autograder.pt")


def course_inputs_path(assignment) -> Path | None:
    """DLGRADE_COURSE_INPUTS, else the manifest's course_inputs, else None: not configured. A
    relative path is looked up in the assignment's data directory (where `dlgrade package
    --data-dir` packs it for Gradescope), then under the repository root."""
    configured = os.environ.get("DLGRADE_COURSE_INPUTS") or settings(assignment).get("course_inputs", "")
    if not configured:
        return None
    path = Path(configured)
    if path.is_absolute():
        return path
    data_dir = assignment.data_dir
    candidates = ([data_dir / path] if data_dir else []) + [ROOT / path]
    return next((c for c in candidates if c.is_file()), candidates[0])


class CourseInputsError(Exception):
    """The staff's course inputs file is configured but unusable: said to staff, in every case."""


def course_inputs(assignment) -> dict | None:
    """The course's inputs file ({'input': ..., 'weights': ...}), loaded once per process in
    the parent (trusted staff data, still read with weights_only=True); None if not configured."""
    path = course_inputs_path(assignment)
    if path is None:
        return None
    key = ("course inputs", str(path))
    if key not in assignment.cache:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CourseInputsError(f"the course inputs file {path} could not be read ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); staff: check [reported] course_inputs") from None
        if type(data) is not dict or type(data.get("input")) is not dict:
            raise CourseInputsError(f"the course inputs file {path} is not of the form {{'input': ..., "
                                    "'weights': ...}; staff: check [reported] course_inputs")
        assignment.cache[key] = data
    return assignment.cache[key]


def read_entry(ctx: Context, case: Case, key: str) -> tuple[object, Verdict | None]:
    """(the entry's value, None), or (None, the failed verdict that says what is wrong)."""
    file = reported_file(ctx.assignment)
    if file not in ctx.submission.files:
        message = ctx.tell_once("reported-missing", f"{file} is not in the submission: upload it with your notebook "
                                "(the notebook's test cells write it)", case, f"{file} is missing")
        return None, case.failed(message)
    try:
        entry = ctx.reported(case, file, key)
    except StudentError as exc:
        return None, case.failed(f"{file} could not be read: {exc}")
    if "error" in entry:
        return None, case.failed(ctx.tell_once("reported-unreadable", str(entry["error"]), case,
                                               f"{file} could not be read"))
    if not entry.get("found"):
        keys = ", ".join(map(str, entry.get("keys") or [])) or "none"
        return None, case.failed(f"{file} has no entry {key!r} (it has: {keys}); run the notebook's test cell that "
                                 "saves it, then upload the new file")
    return entry.get("value"), None


@dataclass
class ReportedOutput(Case):
    """An output the notebook saved on the course's inputs: right, and reproduced by the code."""
    key: str = ""
    call: Call = None                # the student's API on the course inputs (a harness call)
    inputs_from: Callable[[dict], dict] = None   # the course inputs file -> the call's inputs
    tolerance: Tolerance = Tolerance(relative=1e-3)
    # other values the course's own notebook stores under this key, each with why it is
    # accepted: (call, note). CS182's MAE cell stores random_masking's outputs under
    # "restore_masked"; a student who fixed that stores restore_masked's own output.
    also_accept: tuple = ()
    # an entry counts only when the submitted code reproduces it
    requires_code: bool = True
    # applied to every value before it is compared, where the course leaves a choice open (a
    # mask's dtype): it must accept whatever a student may have saved, and raise ValueError
    # with a student-facing message otherwise
    canonical: Callable | None = None

    def compare(self, expected, actual, reveal: bool = True, equal_nan: bool = False, where: str = "output"):
        if self.canonical is not None:
            try:
                expected, actual = self.canonical(expected), self.canonical(actual)
            except (ValueError, TypeError, AttributeError, IndexError) as exc:
                return Comparison(False, 0.0, f"{where}: {exc}")
        return compare(expected, actual, self.tolerance, where=where, reveal=reveal, equal_nan=equal_nan)

    @property
    def staff_only(self) -> bool:
        return True        # expected values come from the reference on the course's inputs

    def run(self, ctx: Context) -> Verdict:
        try:
            course = course_inputs(ctx.assignment)
        except CourseInputsError as exc:
            return self.failed(f"not graded: {exc}")
        file = reported_file(ctx.assignment)
        if course is None:
            return Verdict(0.0, 0.0, f"skipped: {file}'s outputs are graded only when staff configure the course's "
                           "inputs file ([reported] course_inputs in the manifest, or DLGRADE_COURSE_INPUTS)",
                           status="passed", skipped=True)
        reported, failure = read_entry(ctx, self, self.key)
        if failure:
            return failure
        try:
            inputs = self.inputs_from(course)
        except (KeyError, TypeError, ValueError) as exc:
            return self.failed(f"not graded: the course inputs file has no usable input for {self.key!r} "
                               f"({type(exc).__name__}: {exc}); staff: check [reported] course_inputs")
        called = f"read {file}[{self.key!r}], computed by your notebook on the course's inputs"
        call, judged, note = self.call, None, ""
        for candidate, why in ((self.call, ""), *self.also_accept):
            result = self.compare(ctx.reference(self, candidate, inputs), reported, where=f"{file}[{self.key!r}]")
            if judged is None or result.ok:
                call, judged, note = candidate, result, why
            if result.ok:
                break
        return self._verdict(ctx, call, inputs, reported, judged, note, called)

    def _verdict(self, ctx, call, inputs, reported, judged, note, called) -> Verdict:
        file = reported_file(ctx.assignment)
        shared = {"called": called, "notes": (SELF_REPORTED + f": {file} is data your notebook wrote, not code the "
                                              "grader ran; the grader also runs your code on the same inputs",
                                              *((note,) if note else ()))}
        try:
            own, printed = ctx.student(self, call, inputs, timeout=ctx.timeout(self))
        except StudentError as exc:
            own, printed, code_error = None, getattr(exc, "output", ""), str(exc)
        else:
            code_error = ""
        if not judged.ok:
            message = judged.message
            if own is not None and self.compare(ctx.reference(self, call, inputs), own).ok:
                message += (f"\nyour submitted code computes the right value on the same inputs: {file} is older than "
                            "your code. Run the notebook's test cells again and upload the new file")
            return Verdict(0.0, self.points, message, feedback=self.feedback, student_output=printed,
                           hint=ctx.hint(self, inputs, reported), **shared)
        if own is None:
            if not self.requires_code:
                return Verdict(self.points, self.points, judged.message, student_output=printed, **shared)
            return Verdict(0.0, self.points, f"{judged.message}\nnot counted: the value is right, but your submitted code "
                           f"could not be run to reproduce it ({code_error.splitlines()[0] if code_error else 'no code'}); "
                           f"{file} counts only with the code that wrote it", student_output=printed,
                           extra={"reported": "not reproduced"}, **shared)
        reproduced = self.compare(reported, own, where="your code's value")
        if not reproduced.ok:
            return Verdict(0.0, self.points, f"{judged.message}\nnot counted: your submitted code does not compute this "
                           f"value on the same inputs:\n{reproduced.message}\n{file} must be the output of the code you "
                           "submit: run the notebook's test cells again and upload both files",
                           student_output=printed, extra={"reported": "not reproduced"}, **shared)
        return Verdict(self.points, self.points, f"{judged.message}\nyour submitted code reproduces it",
                       student_output=printed, extra={"reported": "reproduced"}, **shared)


@dataclass
class ReportedScore(Case):
    """A number the notebook reports after training, against the manifest's threshold."""
    key: str = ""
    what: str = ""                   # "the ViT's best test accuracy"
    low: float = 0.0                 # the range a value of its kind can have
    high: float = 1.0

    def threshold(self, assignment) -> float:
        thresholds = settings(assignment).get("thresholds", {})
        if self.key not in thresholds:
            raise KeyError(f"[reported.thresholds] has no {self.key!r}")
        return float(thresholds[self.key])

    def run(self, ctx: Context) -> Verdict:
        file = reported_file(ctx.assignment)
        threshold = self.threshold(ctx.assignment)
        value, failure = read_entry(ctx, self, self.key)
        if failure:
            return failure
        if type(value) is torch.Tensor and value.numel() == 1 and (value.is_floating_point() or value.dtype == torch.int64):
            value = value.item()
        if type(value) not in (int, float):
            return self.failed(f"{file}[{self.key!r}] is a {type(value).__name__}, expected a number ({self.what})")
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return self.failed(f"{file}[{self.key!r}] = {value!r} is not a possible value of {self.what} "
                               f"(between {self.low:g} and {self.high:g})")
        notes = (f"{SELF_REPORTED}: the grader did not train your model; {self.what} is the number your notebook "
                 f"saved in {file}, and staff may check it against your notebook's outputs",)
        extra = {"reported": value, "threshold": threshold}
        message = f"{self.what}: {value:.4g} (threshold {threshold:g}, as the course's check_acc)"
        if value >= threshold:
            return Verdict(self.points, self.points, message, notes=notes, extra=extra)
        return Verdict(0.0, self.points, message + " is below the threshold", notes=notes, extra=extra,
                       feedback=self.feedback)



def reference_report(assignment, patch=None) -> bytes:
    """The self-reported file of a notebook that runs the reference, or the reference with
    `patch` (a known mistake or an accepted variant) applied: what that notebook's test cells
    would save. `dlgrade verify` grades each of them with its own file. Each ReportedOutput's
    value on the course's inputs (when configured), and for each ReportedScore the staff's own
    run, [reported.reference] in the manifest. Written with torch.save, as the notebook does."""
    from grader.cases import case_seed
    from grader.oracle import Oracle

    oracle = Oracle.of(assignment)
    course = course_inputs(assignment)
    staff_run = settings(assignment).get("reference", {})
    output = {}
    for case in assignment.cases:
        if isinstance(case, ReportedOutput) and course is not None:
            spec, inputs = case.call.spec(assignment.default_module), case.inputs_from(course)
            seed = case_seed(assignment.name, case.name, "")
            computed = oracle.mistake(patch, spec, inputs, seed) if patch else oracle.reference(spec, inputs, seed)
            if not computed.raised:
                output[case.key] = computed.value
        elif isinstance(case, ReportedScore) and case.key in staff_run:
            output[case.key] = float(staff_run[case.key])
    buffer = io.BytesIO()
    torch.save({"output": output}, buffer)
    return buffer.getvalue()


# ---- a course's JSON log (CS182's submission_logs.json) ------------------------------------------

MAX_LOG_BYTES = 1024 * 1024


def _parse_log(raw: bytes) -> dict:
    """In a bounded helper: {"log": the entries} or {"error": why the file is not a log}."""
    import json

    if len(raw) > MAX_LOG_BYTES:
        return {"error": f"it has {len(raw):,} bytes, more than the {MAX_LOG_BYTES // 1024} KiB a log can have"}
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return {"error": "it is not UTF-8 text"}
    except RecursionError:
        return {"error": "its JSON is nested too deeply"}
    except ValueError as exc:
        return {"error": f"it is not valid JSON ({str(exc)[:200]}); was the file cut short?"}
    if type(data) is not dict:
        return {"error": f"it is a JSON {type(data).__name__}, not the notebook's dict of entries"}
    return {"log": data}


def _plain_list(value, depth: int = 0):
    """A JSON list of numbers (possibly nested), or None if it is anything else."""
    if depth > 8 or type(value) is not list:
        return None
    for item in value:
        if type(item) is list:
            if _plain_list(item, depth + 1) is None:
                return None
        elif type(item) not in (int, float):
            return None
    return value


@dataclass
class LoggedValue(Case):
    """One logged quantity of a course's JSON log: `{key}.shape` must equal the expected shape
    and `{key}.value` (a slice of the flattened output) the expected values, as the course's
    torch.allclose(rtol) checks them. Expected entries come from `expected`, a function of the
    assignment (staff code) that replays the notebook's seeded procedure with the reference.

    With `call` (a harness call that replays the same procedure with the student's code, in the
    sandbox, returning {entry: value}) and the student's code in the submission, a log is also
    checked against what that code writes: an entry the submitted code does not reproduce earns
    nothing, whatever its value. A log uploaded without code is graded as the course grades it,
    marked self-reported."""
    key: str = ""
    file: str = "submission_logs.json"
    aliases: tuple = ()              # other names students upload the file as
    expected: Callable = None        # (assignment) -> {entry: value}
    call: Call | None = None         # the notebook's procedure with the student's code -> {entry: value}
    rtol: float = 1e-3
    atol: float = 1e-8

    @property
    def staff_only(self) -> bool:
        return True

    def _log(self, ctx) -> tuple[dict | None, Verdict | None]:
        name = next((n for n in (self.file, *self.aliases) if n in ctx.submission.files), None)
        if name is None:
            return None, self.failed(ctx.tell_once("log-missing", f"{self.file} is not in the submission: upload the "
                                                   "file your notebook's test cells write", self, f"{self.file} is missing"))
        judged = ctx.once(("log", name), lambda: ctx.judge(_parse_log, ctx.submission.files[name], what=name,
                                                           timeout=15))
        if isinstance(judged, bounded.BoundedFailure):
            return None, self.failed(ctx.tell_once("log-unreadable", f"{name} could not be read: {judged.reason}",
                                                   self, f"{name} could not be read"))
        if "error" in judged:
            return None, self.failed(ctx.tell_once("log-unreadable", f"{name} is not the notebook's log: "
                                                   f"{judged['error']}", self, f"{name} could not be read"))
        return judged["log"], None

    def run(self, ctx: Context) -> Verdict:
        log, failure = self._log(ctx)
        if failure:
            return failure
        key = ("logged entries", self.expected)
        if key not in ctx.assignment.cache:
            ctx.assignment.cache[key] = self.expected(ctx.assignment)
        expected = ctx.assignment.cache[key]
        notes = (f"{SELF_REPORTED}: the log is data your notebook wrote on the course's seeded inputs, not code the "
                 "grader ran; it shows what your code printed, not that this code is the one you submitted",)
        unknown = sorted(str(k) for k in log if k != "time" and k not in expected)
        if unknown:
            notes += (ctx.tell_once("log-extra", f"entries the grader does not know were ignored: "
                                    f"{', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}", self,
                                    "unknown log entries ignored"),)
        shape, value = log.get(f"{self.key}.shape"), log.get(f"{self.key}.value")
        if shape is None or value is None:
            missing = [k for k, v in ((f"{self.key}.shape", shape), (f"{self.key}.value", value)) if v is None]
            return self.failed(f"the log has no entry {', '.join(missing)}: run the notebook's test cell that logs "
                               f"{self.key}, then upload the new file", notes=notes)
        if _plain_list(shape) is None or not all(type(n) is int for n in shape):
            return self.failed(f"{self.key}.shape is {str(shape)[:80]}, not a list of integers", notes=notes)
        if list(shape) != list(expected[f"{self.key}.shape"]):
            return self.failed(f"{self.key}.shape is {shape}, expected {expected[f'{self.key}.shape']}", notes=notes)
        if _plain_list(value) is None:
            return self.failed(f"{self.key}.value is {str(value)[:80]}, not a list of numbers", notes=notes)
        got = torch.tensor(value, dtype=torch.float64).flatten()
        want = torch.tensor(expected[f"{self.key}.value"], dtype=torch.float64).flatten()
        if got.shape != want.shape:
            return self.failed(f"{self.key}.value has {got.numel()} numbers, expected {want.numel()}", notes=notes)
        if not torch.isfinite(got).all():
            return self.failed(f"{self.key}.value has NaN or infinite numbers", notes=notes)
        close = torch.isclose(got, want, rtol=self.rtol, atol=self.atol)
        if bool(close.all()):
            return self._reproduced(ctx, got, notes)
        worst = int(torch.argmax((got - want).abs()))
        return self.failed(f"{self.key}.value: {int((~close).sum())} of {want.numel()} numbers differ beyond rtol "
                           f"{self.rtol:g}; the largest difference is at position {worst}", notes=notes)

    def _reproduced(self, ctx, got: torch.Tensor, notes: tuple) -> Verdict:
        """A right entry: full marks if the submitted code writes it too (or no code came with
        the log, as in the course's own grading), nothing if that code writes something else."""
        matched = f"{self.key}: shape and values match (rtol {self.rtol:g})"
        own = self._own_log(ctx)
        if own is None:
            return Verdict(self.points, self.points, matched, notes=notes)
        notes = tuple(n for n in notes if not n.startswith(SELF_REPORTED))
        if "error" in own:
            return self.failed(ctx.tell_once("log-replay", "the log could not be checked against your code: running "
                                             "the notebook's logging test cells with it failed: " + own["error"],
                                             self, "the log could not be checked against your code"), notes=notes)
        mine = own["log"].get(f"{self.key}.value")
        mine = torch.tensor(mine, dtype=torch.float64).flatten() if _plain_list(mine) is not None else None
        if mine is not None and mine.shape == got.shape and bool(torch.isclose(got, mine, rtol=self.rtol,
                                                                                atol=self.atol).all()):
            return Verdict(self.points, self.points, f"{matched}; your submitted code writes the same entry when "
                           "the grader runs the notebook's test cells with it", notes=notes)
        writes = "nothing for it" if mine is None else f"{[round(v, 6) for v in mine.tolist()]}"
        return self.failed(f"{self.key}: the log's values are right, but your submitted code writes {writes} when "
                           "the grader runs the notebook's test cells with it: the log must come from the code you "
                           "submit (run the test cells again and upload the new log)", notes=notes)

    def _own_log(self, ctx) -> dict | None:
        """What the submitted code logs, computed once per run in the sandbox: {"log": entries} or
        {"error": why not}; None without a `call` or without code in the submission."""
        if self.call is None or f"{ctx.default_module}.py" not in ctx.submission.files:
            return None

        def replay() -> dict:
            try:
                value, _ = ctx.student(self, self.call, {})
            except StudentError as exc:
                lines = str(exc).splitlines()      # what raised is on the last line of a traceback
                return {"error": "\n".join(lines if len(lines) <= 4 else lines[:1] + ["  ..."] + lines[-3:])[:800]}
            return {"log": value} if isinstance(value, dict) else {"error": "it returned no log"}
        return ctx.once(("own log", self.call.target), replay)

