"""Declarative test cases.

A case says what to call, on which seeded inputs, how to judge the result and what it is
worth. Four kinds cover most homework:

    Value(name, points, Call("softmax_attention", ("Q", "K", "V")), {"Q": Randn(2, 16, 8), ...})
    Complexity(name, points, Call(...), inputs_at=lambda n: {...}, sizes=(256, 512, 1024, 2048))
    GpuTiming(name, Call(...), inputs_at=..., sizes=...)      # skipped, with a message, without CUDA
    Answer(name, points, question)                            # a symbolic answer (manifest: answers_file)

and grader/reported.py adds two for self-reported files (CS182's autograder.pt): ReportedOutput
(an output saved on the course's inputs, checked against the submitted code) and ReportedScore
(an accuracy against a threshold).

A kind is one class: its `run(ctx)` asks the `Context` (below) for the student's value of a
call (computed in the sandbox under a named measure, grader/sandbox/measures.py), the
reference's, the expected one and a hint, and returns a Verdict. A kind that needs a new
measurement registers one measure; nothing else in the engine changes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import torch

from grader import bounded
from grader.compare import Comparison, Tolerance, compare
from grader.complexity import growth_exponent
from grader.seeding import case_seed, seed_everything  # noqa: F401  (part of the case-writing API)
from grader.verdict import Verdict

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


# ---- inputs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Randn:
    """Standard normal tensor (times `scale`), float64 unless the homework needs otherwise."""
    shape: tuple
    dtype: torch.dtype = torch.float64
    scale: float = 1.0

    def __init__(self, *shape, dtype=torch.float64, scale=1.0):
        object.__setattr__(self, "shape", tuple(shape))
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "scale", scale)

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(self.shape, generator=generator, dtype=self.dtype) * self.scale


def build_inputs(specs: dict, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {name: spec.build(generator) if hasattr(spec, "build") else spec for name, spec in specs.items()}


# ---- calls --------------------------------------------------------------------------------

@dataclass(frozen=True)
class In:
    """Refers to a named input inside a call's kwargs or a Glue's kwargs."""
    name: str


@dataclass(frozen=True)
class Glue:
    """A function of the assignment's own support module `module` (its glue, copied into the
    sandbox like any support file), handed to the student's function: e.g. a trusted feature map."""
    name: str
    kwargs: dict = field(default_factory=dict)
    module: str = "glue"


def _encode(value):
    if isinstance(value, In):
        return {"$input": value.name}
    if isinstance(value, Glue):
        return {"$glue": value.name, "module": value.module, "kwargs": {k: _encode(v) for k, v in value.kwargs.items()}}
    return value


def _glue_modules(values) -> set[str]:
    found = set()
    for value in values:
        if isinstance(value, Glue):
            found |= {value.module} | _glue_modules(value.kwargs.values())
        elif isinstance(value, (list, tuple)):
            found |= _glue_modules(value)
    return found


@dataclass(frozen=True)
class Call:
    """`target` is a function (or dotted attribute) of the student's module.

    Positional `args` are input names (or Glue); `kwargs` values are literals, In or Glue.
    `grad` names inputs to differentiate with the upstream gradient given as input `upstream`.
    `with_modules`: the target is a harness function (a support file of the assignment) called
    as `target(modules, *args, **kwargs)`, where `modules` maps names to the student's modules
    (the reference's, in the parent); `needs` names the student modules it uses, so a file that
    failed to import fails only the cases that need it.
    """
    target: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    module: str | None = None
    grad: tuple | None = None
    upstream: str = "dOut"
    with_modules: bool = False
    needs: tuple = ()
    shows: str = ""                  # what the feedback says was called, when not the target itself

    def spec(self, default_module: str) -> dict:
        return {
            "module": self.module or default_module,
            "target": self.target,
            "args": [_encode(In(a) if isinstance(a, str) else a) for a in self.args],
            "kwargs": {k: _encode(v) for k, v in self.kwargs.items()},
            "grad": {"wrt": list(self.grad), "upstream": self.upstream} if self.grad else None,
            "with_modules": self.with_modules,
            "needs": list(self.needs),
        }

    def modules(self, default_module: str) -> set[str]:
        """Every module the call uses in the sandbox: its own, the student's modules it needs
        (a harness call), and the glue modules of its arguments."""
        return {self.module or default_module, *self.needs} | _glue_modules([*self.args, *self.kwargs.values()])

    def describe(self, inputs: dict) -> str:
        def show(a):
            if isinstance(a, str) and isinstance(inputs.get(a), torch.Tensor):
                t = inputs[a]
                return f"{a}: {list(t.shape)} {str(t.dtype).replace('torch.', '')}"
            if isinstance(a, Glue):
                return f"<{a.name}>"
            if isinstance(a, str) and isinstance(inputs.get(a), dict):
                return f"{a}: {len(inputs[a])} weights"
            return repr(a)
        if self.shows:
            shapes = [show(a) for a in self.args if isinstance(a, str)]
            what = self.shows + (f" on {', '.join(shapes)}" if shapes else "")
            return what + (f", then gradients w.r.t. {', '.join(self.grad)}" if self.grad else "")
        parts = [show(a) for a in self.args] + [f"{k}={show(v.name if isinstance(v, In) else v)}" for k, v in self.kwargs.items()]
        what = f"{self.target}({', '.join(parts)})"
        return what + (f", then gradients w.r.t. {', '.join(self.grad)}" if self.grad else "")


class StudentError(Exception):
    """The student's code raised, timed out, crashed or returned something unusable."""


class Context(Protocol):
    """What a case sees of a grading run (implemented by grader/context.py's GradingContext)."""

    mode: str                        # "staff" (reference at hand) or "student" (golden values)
    assignment: object               # grader.assignment.Assignment
    default_module: str
    data_dir: Path | None
    submission: object               # grader.submission.Submission: the student's files

    def inputs(self, case: "Case", specs: dict, offset: int = 0) -> dict:
        """The case's inputs, built from `specs` on the case's seed (+ `offset`)."""

    def student(self, case: "Case", call: Call, inputs, measure: str = "call", options: dict | None = None,
                timeout: float | None = None) -> tuple[object, str]:
        """(the measure of the student's call, what it printed); StudentError otherwise."""

    def reference(self, case: "Case", call: Call, inputs, measure: str = "call", options: dict | None = None):
        """The measure of the reference's call on the same seed (staff mode only)."""

    def expected(self, case: "Case", inputs):
        """The reference's value of the case's call (staff mode), else the recorded one."""

    def reference_seconds(self, case: "Case", inputs) -> float | None:
        """How long the reference took (staff mode), else None."""

    def timeout(self, case: "Case", reference_seconds: float | None = None) -> float:
        """The case's time limit: a floor plus a multiple of the reference's time, within its cap."""

    def hint(self, case: "Case", inputs: dict, actual) -> str:
        """"likely mistake: ..." when a known mistake computes what the student's code did."""

    def mistake_values(self, case: "Case", inputs: dict):
        """(hint, value) of each known mistake whose value differs from the expected one."""

    def judge(self, fn: Callable, *args, what: str, timeout: float = 20.0, memory_mb: int = 256):
        """`fn(*args)` in a bounded helper: its value, or a bounded.BoundedFailure."""

    def reported(self, case: "Case", file: str, key: str) -> dict:
        """One entry of a self-reported file of the submission, read in the sandbox:
        {"found", "value", "keys"} or {"error"} (grader/reported.py)."""

    def once(self, key, compute):
        """`compute()` the first time `key` is asked for in this run, the same value afterwards."""

    def tell_once(self, cause: str, message: str, case: "Case", short: str) -> str:
        """`message` the first time a cause is told, a pointer to that case afterwards."""


# ---- cases --------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    points: float
    visibility: str = "visible"
    feedback: str = ""               # shown when the case fails: what to look at

    def __post_init__(self):
        if self.visibility not in VISIBILITIES:
            raise ValueError(f"case {self.name!r}: visibility must be one of {VISIBILITIES}")

    # names of cases that must all pass for this one to count (checked after every case ran)
    requires: tuple = ()
    # the sentence of the course's handout (or starter, or course check) this case checks: shown
    # with a failure, so that a student sees what was asked; a case without one asks nothing
    # the handout does not, and is worth 0 points unless the manifest's [points] says otherwise
    handout: str = ""

    @property
    def public(self) -> bool:
        return self.visibility == "visible"

    @property
    def staff_only(self) -> bool:
        """Graded only where staff data is present (never in a student bundle)."""
        return False

    def warm(self, ctx: Context) -> None:
        """Compute, ahead of any student, the staff values grading will ask for (`dlgrade warm`
        fills the oracle's cache with them). Most kinds need none."""

    def failed(self, message: str, **kw) -> Verdict:
        return Verdict(0.0, self.points, message, feedback=self.feedback, **kw)

    def gate(self, verdict: Verdict, verdicts: dict, ctx) -> Verdict:
        """Zero this case's points unless every case in `requires` passed (where they ran)."""
        failing = [name for name in self.requires if name in verdicts and verdicts[name].status != "passed"]
        if not failing or verdict.score == 0:
            return verdict
        note = (f"not counted: this check counts only when {', '.join(repr(n) for n in failing)} also "
                f"pass{'es' if len(failing) == 1 else ''}")
        return replace(verdict, score=0.0, status="failed", notes=(*verdict.notes, note))


@dataclass
class Value(Case):
    call: Call = None
    inputs: dict = field(default_factory=dict)
    tolerance: Tolerance = Tolerance()
    partial: bool = False            # a multi-part output earns the share of parts that match
    timeout: float | None = None     # the cap; by default a multiple of the reference's time
    # Judge a quantity derived from the output instead of the output itself (in the parent, on
    # plain tensors), e.g. the Gram matrix of a feature map, whose feature order is free.
    # `derive_check(expected, actual)` says what is wrong with the output's shape before any
    # work is done on it (None: fine), so that the parent never derives from a huge tensor.
    derive: Callable | None = None
    derived: str = ""                # what `derive` computes, for the feedback
    derive_check: Callable | None = None

    def compare(self, expected, actual, reveal: bool = True, equal_nan: bool = False):
        if self.derive is not None:
            problem = self.derive_check(expected, actual) if self.derive_check else None
            if problem:
                return Comparison(False, 0.0, f"output: {problem}")
            try:
                expected, actual = self.derive(expected), self.derive(actual)
            except Exception as exc:
                shape = list(actual.shape) if isinstance(actual, torch.Tensor) else type(actual).__name__
                return Comparison(False, 0.0, f"output ({shape}): cannot form {self.derived or 'the judged quantity'} "
                                              f"from it ({type(exc).__name__}: {exc})")
        return compare(expected, actual, self.tolerance, where=self.derived or "output", reveal=reveal, equal_nan=equal_nan)

    def built_inputs(self, ctx: Context) -> dict:
        return ctx.inputs(self, self.inputs)

    def warm(self, ctx: Context) -> None:
        inputs = self.built_inputs(ctx)
        ctx.reference_seconds(self, inputs)
        list(ctx.mistake_values(self, inputs))

    def expected_value(self, ctx: Context, inputs):
        """What the student's value is judged against (a subclass may read a course fixture)."""
        return ctx.expected(self, inputs)

    def run(self, ctx: Context) -> Verdict:
        inputs = self.built_inputs(ctx)
        called = "called " + self.call.describe(inputs)
        expected = self.expected_value(ctx, inputs)
        timeout = ctx.timeout(self, ctx.reference_seconds(self, inputs))
        try:
            actual, printed = ctx.student(self, self.call, inputs, timeout=timeout)
        except StudentError as exc:
            return self.failed(str(exc), called=called, student_output=getattr(exc, "output", ""))
        result = self.compare(expected, actual, reveal=self.public)
        if result.ok:
            return Verdict(self.points, self.points, result.message, called=called, student_output=printed)
        score = self.points * result.fraction if self.partial else 0.0
        return Verdict(score, self.points, result.message, called=called, feedback=self.feedback,
                       hint=ctx.hint(self, inputs, actual), student_output=printed)


def gram(features: torch.Tensor) -> torch.Tensor:
    """phi(X) phi(X)^T: every pairwise kernel value, whatever the order of the features."""
    return features @ features.transpose(-2, -1)


def rows_match(expected: torch.Tensor, actual, max_features: int = 4096) -> str | None:
    """Before a Gram matrix: the same rows as expected (all dims but the last), a bounded
    number of features, the same dtype. Any feature count within the bound may be right."""
    if type(actual) is not torch.Tensor:
        return f"got {type(actual).__name__}, expected a torch.Tensor [{', '.join(map(str, expected.shape[:-1]))}, F]"
    if actual.dim() != expected.dim() or actual.shape[:-1] != expected.shape[:-1]:
        want = ", ".join(map(str, expected.shape[:-1]))
        return f"shape [{', '.join(map(str, actual.shape))}], expected [{want}, F] (one feature vector per row)"
    if actual.shape[-1] > max_features:
        return f"{actual.shape[-1]} features per row, more than the {max_features} the grader accepts"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype}, expected {expected.dtype} (keep the inputs' dtype)"
    return None


def _replay_and_judge(traces: list, inputs: list, expected: list | None, sizes: list, tolerance,
                      derive: Callable | None = None) -> dict:
    """In a bounded helper: replay each size's trace on our inputs, count, check the output."""
    from grader.complexity import TraceError, replay

    torch.set_num_threads(1)
    work, peak, operations, constants, wrong = [], [], [], [], ""
    for n, trace, case_inputs, want in zip(sizes, traces, inputs, expected or [None] * len(sizes)):
        try:
            output, counter, constant_elements = replay(trace, case_inputs)
        except TraceError as exc:
            return {"error": f"at N={n}: {exc}"}
        if want is not None and not wrong:
            if derive is not None:
                try:
                    want, output = derive(want), derive(output)
                except Exception as exc:
                    return {"error": f"at N={n}: its output cannot be judged ({type(exc).__name__}: {exc})"}
            result = compare(want, output, tolerance, where=f"output at N={n}", reveal=False)
            if not result.ok:
                wrong = f"the operations it ran compute a wrong result, so they earn nothing:\n{result.message}"
        work.append(counter.work)
        peak.append(counter.peak_bytes)
        operations.append(counter.operations)
        constants.append(constant_elements)
    return {"work": work, "peak_bytes": peak, "operations": operations, "constants": constants, "wrong": wrong}


@dataclass
class Complexity(Case):
    """The work and largest allocation of a call at several sizes, and their growth exponent.

    The worker records the aten operations each call dispatched; the parent replays them on its
    own inputs under its own counter in a bounded helper (grader/complexity.py), and checks the
    replayed output against the expected one (staff mode). Nothing the student's process
    counted or reported is believed.

    `max_operation_exponent` also limits how the NUMBER of operations grows: a vectorised call
    dispatches the same few operations at every size, a Python loop over the batch one more set
    per element (N^1), over all triplets N^3, even where the total work is the same. It is
    measured between the two largest sizes, where a fixed number of setup operations weighs least."""
    call: Call = None
    inputs_at: Callable[[int], dict] = None
    sizes: tuple = (256, 512, 1024, 2048)
    max_exponent: float = 1.35
    max_operation_exponent: float | None = None
    max_constant_elements: int = 4096
    derive: Callable | None = None   # judge the replayed output through this, as Value does
    timeout: float | None = 120.0
    # recording every operation costs far more than the reference's plain call (and a fresh
    # worker's first recording sets up torch's dispatch machinery): a floor of its own
    timeout_floor: float | None = 30.0
    tolerance: Tolerance = Tolerance()

    def _inputs(self, ctx: Context) -> list[dict]:
        return [ctx.inputs(self, self.inputs_at(n), offset=i) for i, n in enumerate(self.sizes)]

    def warm(self, ctx: Context) -> None:
        for inputs in self._inputs(ctx):
            ctx.reference_seconds(self, inputs)

    def run(self, ctx: Context) -> Verdict:
        inputs = self._inputs(ctx)
        called = f"called {self.call.describe(inputs[0])} for N in {list(self.sizes)}"
        expected = [ctx.expected(self, x) for x in inputs] if ctx.mode == "staff" else None
        seconds = [ctx.reference_seconds(self, x) for x in inputs]
        traces, printed = [], ""
        for n, case_inputs, ref_seconds in zip(self.sizes, inputs, seconds):
            try:
                trace, out = ctx.student(self, self.call, case_inputs, measure="record",
                                         timeout=ctx.timeout(self, ref_seconds))
            except StudentError as exc:
                return self.failed(f"at N={n}: {exc}", called=called, student_output=getattr(exc, "output", ""))
            traces.append(trace)
            printed += out
        judged = ctx.judge(_replay_and_judge, traces, inputs, expected, list(self.sizes), self.tolerance,
                           self.derive, what="the recorded operations", timeout=60, memory_mb=1024)
        if isinstance(judged, bounded.BoundedFailure):
            return self.failed(f"its operations could not be counted: {judged.reason}", called=called,
                               student_output=printed)
        if "error" in judged:
            return self.failed(judged["error"], called=called, student_output=printed)
        return self._verdict(called, judged, printed)

    def _verdict(self, called: str, counts: dict, printed: str) -> Verdict:
        sizes = list(self.sizes)
        work_exp = growth_exponent(sizes, counts["work"])
        mem_exp = growth_exponent(sizes, counts["peak_bytes"])
        table = "\n".join(
            f"  N={n:>6}: {w:.3g} operations, largest tensor {b / 2**20:.3g} MiB"
            for n, w, b in zip(sizes, counts["work"], counts["peak_bytes"]))
        summary = (f"work grows like N^{work_exp:.2f}, largest intermediate like N^{mem_exp:.2f} "
                   f"(limit N^{self.max_exponent:g}; counted by replaying the operations your code ran)\n{table}")
        extra = {"work_exponent": round(work_exp, 3), "memory_exponent": round(mem_exp, 3)}
        loop = ""
        if self.max_operation_exponent is not None:
            # between the two largest sizes, where the fixed setup operations of a loop weigh least
            ops_exp = growth_exponent(sizes[-2:], counts["operations"][-2:])
            extra["operation_exponent"] = round(ops_exp, 3)
            summary += (f"\nthe number of tensor operations grows like N^{ops_exp:.2f} (limit N^{self.max_operation_exponent:g}): "
                        + ", ".join(f"{o} at N={n}" for n, o in zip(sizes, counts["operations"])))
            if ops_exp > self.max_operation_exponent:
                loop = (f"a Python loop: the operations it runs grow like N^{ops_exp:.2f} with the batch; "
                        "compute on the whole batch at once (masks and broadcasting)")
        shared = {"called": called, "student_output": printed, "extra": extra}
        if counts["wrong"]:
            return self.failed(f"{summary}\n{counts['wrong']}", **shared)
        if max(counts["constants"]) > self.max_constant_elements:
            return self.failed(f"{summary}\nit used tensors of up to {max(counts['constants'])} elements that no "
                               "torch operation in the call produced (computed with numpy, or outside the counted "
                               "operations): their work cannot be measured; compute with torch operations", **shared)
        if loop:
            return self.failed(summary, hint=loop, **shared)
        if max(work_exp, mem_exp) <= self.max_exponent:
            return Verdict(self.points, self.points, summary, **shared)
        why = "an N x N intermediate" if mem_exp > 1.5 else "work that grows faster than linearly in N"
        return self.failed(summary, hint=f"the implementation is not linear in N: {why}", **shared)


@dataclass
class GpuTiming(Case):
    """Student/reference time ratio on CUDA (median of repeats, CUDA events). Worth 0 points by
    default: Gradescope has no GPU, so it informs staff runs instead of grading. The student's
    times are measured in the worker, so they are reported, never trusted for points."""
    call: Call = None
    inputs_at: Callable[[int], dict] = None
    sizes: tuple = (1024, 4096, 16384)
    repeats: int = 20
    timeout: float | None = 300.0

    def run(self, ctx: Context) -> Verdict:
        if not torch.cuda.is_available():
            return Verdict(0.0, 0.0, "skipped: no CUDA device on this machine; the GPU timing runs only where a "
                           "GPU is present", status="passed", skipped=True)
        options = {"repeats": self.repeats}
        student, reference = [], []
        for i, n in enumerate(self.sizes):
            inputs = ctx.inputs(self, self.inputs_at(n), offset=i)
            try:
                times, _ = ctx.student(self, self.call, [inputs], measure="cuda_time", options=options)
            except StudentError as exc:
                return self.failed(f"GPU timing failed at N={n}: {exc}")
            student.append(times[0])
            if ctx.mode == "staff":
                reference += ctx.reference(self, self.call, [inputs], measure="cuda_time", options=options)
        lines = [f"N={n}: student {s:.3f} ms" + (f", reference {r:.3f} ms, ratio {s / r:.2f}" if r else "")
                 for n, s, r in zip(self.sizes, student, reference or [None] * len(student))]
        exponent = growth_exponent(list(self.sizes), student)
        lines.append(f"student time grows like N^{exponent:.2f} (as reported by the worker)")
        extra = {"student_ms": student, "reference_ms": reference or None, "time_exponent": round(exponent, 3)}
        return Verdict(self.points, self.points, "\n".join(lines), extra=extra)


def _warm_symbolic(assignment) -> None:
    """Once per process, in the parent: grade the staff's own answers (trusted text), so that
    sympy's lazily imported modules and its caches are in place before the helpers that judge
    the student's answers are forked, instead of being paid again in every helper."""
    if "symbolic warmed" in assignment.cache:
        return
    from grader.symbolic import grade_answers

    expected = "".join(f"{q.id} = {json.dumps(q.expected)}\n" for q in assignment.questions)
    grade_answers(expected.encode(), assignment.questions)
    assignment.cache["symbolic warmed"] = True


def _grade_answer(raw: bytes, questions: list, index: int) -> dict:
    """In a bounded helper: one question of the answers file."""
    from grader.symbolic import grade_answers

    verdict = grade_answers(raw, [questions[index]])[0]
    return {"correct": verdict.correct, "message": verdict.message}


def _grade_all_answers(raw: bytes, questions: list) -> list[dict]:
    """In a bounded helper: every question of the answers file, in order."""
    from grader.symbolic import grade_answers

    return [{"correct": v.correct, "message": v.message} for v in grade_answers(raw, questions)]


@dataclass
class Answer(Case):
    """A symbolic answer from the submission's answers file (see grader/symbolic), judged in a
    bounded helper: a pathological expression costs that question, not the run. Every question
    is first judged in one helper, once per run (a helper's fork costs more than judging a usual
    answer); only if that helper fails is each question judged in a helper of its own, so that
    the failure is pinned on the question that caused it."""
    question: object = None
    answers_file: str = ""           # the manifest's answers_file

    @property
    def staff_only(self) -> bool:
        return True        # the expected answers are staff-only; a student bundle has none

    def run(self, ctx: Context) -> Verdict:
        raw = ctx.submission.files.get(self.answers_file)
        if raw is None:
            return self.failed(ctx.tell_once("answers-missing", f"{self.answers_file} is not in the submission, so "
                                             "no symbolic answer was graded (see the handout for its format)", self,
                                             f"{self.answers_file} is missing"))
        questions = ctx.assignment.questions
        _warm_symbolic(ctx.assignment)
        index = questions.index(self.question)
        together = ctx.once(("answers judged", self.answers_file), lambda: ctx.judge(
            _grade_all_answers, raw, questions, what=f"your answers in {self.answers_file}", timeout=15))
        if isinstance(together, list) and len(together) == len(questions):
            judged = together[index]
        else:
            judged = ctx.judge(_grade_answer, raw, questions, index, what=f"your answer to {self.question.id}",
                               timeout=15)
        if isinstance(judged, bounded.BoundedFailure):
            return self.failed(f"{self.question.id}: could not be checked: {judged.reason}; write it in a simpler form")
        if judged["correct"]:
            return Verdict(self.points, self.points, judged["message"])
        return self.failed(judged["message"])
