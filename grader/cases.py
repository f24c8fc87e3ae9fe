"""Declarative test cases.

A case says what to call, on which seeded inputs, how to judge the result and what it is
worth. Four kinds cover the homework so far:

    Value(name, points, Call("softmax_attention", ("Q", "K", "V")), {"Q": Randn(2, 16, 8), ...})
    Complexity(name, points, Call(...), inputs_at=lambda n: {...}, sizes=(256, 512, 1024, 2048))
    GpuTiming(name, Call(...), inputs_at=..., sizes=...)      # skipped, with a message, without CUDA
    Answer(name, points, question)                            # a symbolic answer in answers.toml

Each kind's `run(ctx)` asks the context for the student's value (computed in the sandbox) and
the expected one (reference in staff mode, golden file in student mode) and returns a Verdict.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import torch

from grader.compare import Comparison, Tolerance, compare
from grader.complexity import growth_exponent

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


def case_seed(assignment: str, case_name: str) -> int:
    return zlib.crc32(f"{assignment}/{case_name}".encode())


# ---- calls --------------------------------------------------------------------------------

@dataclass(frozen=True)
class In:
    """Refers to a named input inside a call's kwargs or a Glue's kwargs."""
    name: str


@dataclass(frozen=True)
class Glue:
    """A grader-provided callable (see grader/glue.py), e.g. a trusted feature map."""
    name: str
    kwargs: dict = field(default_factory=dict)


def _encode(value):
    if isinstance(value, In):
        return {"$input": value.name}
    if isinstance(value, Glue):
        return {"$glue": value.name, "kwargs": {k: _encode(v) for k, v in value.kwargs.items()}}
    return value


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

    def spec(self, default_module: str, sizes: int | None = None) -> dict:
        return {
            "module": self.module or default_module,
            "target": self.target,
            "args": [_encode(In(a) if isinstance(a, str) else a) for a in self.args],
            "kwargs": {k: _encode(v) for k, v in self.kwargs.items()},
            "grad": {"wrt": list(self.grad), "upstream": self.upstream} if self.grad else None,
            "sizes": sizes,
            "with_modules": self.with_modules,
            "needs": list(self.needs),
        }

    def describe(self, inputs: dict) -> str:
        def show(a):
            if isinstance(a, str) and isinstance(inputs.get(a), torch.Tensor):
                t = inputs[a]
                return f"{a}: {list(t.shape)} {str(t.dtype).replace('torch.', '')}"
            if isinstance(a, Glue):
                return f"<{a.name}>"
            return repr(a)
        if self.shows:
            shapes = [show(a) for a in self.args if isinstance(a, str)]
            what = self.shows + (f" on {', '.join(shapes)}" if shapes else "")
            return what + (f", then gradients w.r.t. {', '.join(self.grad)}" if self.grad else "")
        parts = [show(a) for a in self.args] + [f"{k}={show(v.name if isinstance(v, In) else v)}" for k, v in self.kwargs.items()]
        what = f"{self.target}({', '.join(parts)})"
        return what + (f", then gradients w.r.t. {', '.join(self.grad)}" if self.grad else "")


# ---- verdicts -----------------------------------------------------------------------------

@dataclass
class Verdict:
    score: float
    max_score: float
    message: str
    status: str = ""                 # "passed" / "failed"; derived when empty
    hint: str = ""                   # the named likely mistake, when one matched
    student_output: str = ""         # what the student's code printed (never parsed)
    skipped: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.status:
            self.status = "passed" if self.score >= self.max_score else "failed"


class StudentError(Exception):
    """The student's code raised, timed out, crashed or returned something unusable."""


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

    @property
    def public(self) -> bool:
        return self.visibility == "visible"

    def failed(self, message: str, **kw) -> Verdict:
        if self.feedback:
            message += f"\n{self.feedback}"
        return Verdict(0.0, self.points, message, **kw)


@dataclass
class Value(Case):
    call: Call = None
    inputs: dict = field(default_factory=dict)
    tolerance: Tolerance = Tolerance()
    partial: bool = False            # a multi-part output earns the share of parts that match
    timeout: float | None = None
    # Judge a quantity derived from the output instead of the output itself (in the parent, on
    # plain tensors), e.g. the Gram matrix of a feature map, whose feature order is free.
    derive: Callable | None = None
    derived: str = ""                # what `derive` computes, for the feedback
    # Expected value from a fixture instead of the reference: expected_from(ctx, inputs), e.g. a
    # course's recorded array read from the data directory (both modes).
    expected_from: Callable | None = None

    def compare(self, expected, actual, reveal: bool = True, equal_nan: bool = False):
        if self.derive is not None:
            try:
                expected, actual = self.derive(expected), self.derive(actual)
            except Exception as exc:
                shape = list(actual.shape) if isinstance(actual, torch.Tensor) else type(actual).__name__
                return Comparison(False, 0.0, f"output ({shape}): cannot form {self.derived or 'the judged quantity'} "
                                              f"from it ({type(exc).__name__}: {exc})")
        result = compare(expected, actual, self.tolerance, where=self.derived or "output", reveal=reveal, equal_nan=equal_nan)
        return result

    def built_inputs(self, ctx) -> dict:
        return build_inputs(self.inputs, case_seed(ctx.assignment.name, self.name))

    def run(self, ctx) -> Verdict:
        inputs = self.built_inputs(ctx)
        called = "called " + self.call.describe(inputs)
        try:
            actual, printed = ctx.student_call(self, self.call.spec(ctx.default_module), inputs)
        except StudentError as exc:
            return self.failed(f"{called}\n{exc}", student_output=getattr(exc, "output", ""))
        expected = ctx.expected(self, inputs)
        result = self.compare(expected, actual, reveal=self.public)
        if result.ok:
            return Verdict(self.points, self.points, f"{called}\n{result.message}", student_output=printed)
        score = self.points * result.fraction if self.partial else 0.0
        hint = ctx.mistake_hint(self, inputs, actual)
        return Verdict(score, self.points, f"{called}\n{result.message}" + (f"\n{self.feedback}" if self.feedback else ""),
                       hint=hint, student_output=printed)


def gram(features: torch.Tensor) -> torch.Tensor:
    """phi(X) phi(X)^T: every pairwise kernel value, whatever the order of the features."""
    return features @ features.transpose(-2, -1)


@dataclass
class Complexity(Case):
    """Counts the work and largest allocation of a call at several sizes; fits the exponent."""
    call: Call = None
    inputs_at: Callable[[int], dict] = None
    sizes: tuple = (256, 512, 1024, 2048)
    max_exponent: float = 1.35
    timeout: float | None = 120.0
    tolerance: Tolerance = Tolerance()

    def _counted_outputs_wrong(self, ctx, inputs: list, outputs) -> str:
        """Code could detect the counter and take a cheap path only while counted: the counted
        outputs must be right too (checked where the reference is at hand)."""
        if ctx.mode != "staff":
            return ""
        if not isinstance(outputs, list) or len(outputs) != len(inputs):
            return "the outputs of the counted calls could not be read"
        for n, case_inputs, actual in zip(self.sizes, inputs, outputs):
            result = compare(ctx.expected(self, case_inputs), actual, self.tolerance, where=f"output at N={n}", reveal=False)
            if not result.ok:
                return f"while its operations were counted, the call returned a wrong result:\n{result.message}"
        return ""

    def run(self, ctx) -> Verdict:
        seed = case_seed(ctx.assignment.name, self.name)
        inputs = [build_inputs(self.inputs_at(n), seed + i) for i, n in enumerate(self.sizes)]
        called = f"called {self.call.describe(inputs[0])} for N in {list(self.sizes)}"
        try:
            counts, printed = ctx.student_call(self, self.call.spec(ctx.default_module, sizes=len(self.sizes)), inputs)
            work_exp = growth_exponent(list(self.sizes), counts["work"])
            mem_exp = growth_exponent(list(self.sizes), counts["peak_bytes"])
        except StudentError as exc:
            return self.failed(f"{called}\n{exc}", student_output=getattr(exc, "output", ""))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return self.failed(f"{called}\nthe operation counts could not be read")
        table = "\n".join(
            f"  N={n:>6}: {w:.3g} operations, largest tensor {b / 2**20:.3g} MiB"
            for n, w, b in zip(self.sizes, counts["work"], counts["peak_bytes"]))
        summary = (f"{called}\nwork grows like N^{work_exp:.2f}, largest intermediate like N^{mem_exp:.2f} "
                   f"(limit N^{self.max_exponent:g})\n{table}")
        extra = {"work_exponent": round(work_exp, 3), "memory_exponent": round(mem_exp, 3)}
        wrong = self._counted_outputs_wrong(ctx, inputs, counts.get("outputs"))
        if wrong:
            return self.failed(f"{summary}\n{wrong}", student_output=printed, extra=extra)
        if max(work_exp, mem_exp) <= self.max_exponent:
            return Verdict(self.points, self.points, summary, student_output=printed, extra=extra)
        why = "an N x N intermediate" if mem_exp > 1.5 else "work that grows faster than linearly in N"
        return self.failed(summary, hint=f"the implementation is not linear in N: {why}", student_output=printed, extra=extra)


@dataclass
class GpuTiming(Case):
    """Student/reference time ratio on CUDA (median of repeats, CUDA events). Worth 0 points by
    default: Gradescope has no GPU, so it informs staff runs instead of grading."""
    call: Call = None
    inputs_at: Callable[[int], dict] = None
    sizes: tuple = (1024, 4096, 16384)
    repeats: int = 20
    timeout: float | None = 300.0

    def run(self, ctx) -> Verdict:
        if not torch.cuda.is_available():
            return Verdict(0.0, self.points, "skipped: no CUDA device on this machine; the GPU timing runs only where a GPU is present",
                           status="passed" if self.points == 0 else "failed", skipped=True)
        return ctx.gpu_timing(self)


@dataclass
class Answer(Case):
    """A symbolic answer from the submission's answers file (see grader/symbolic)."""
    question: object = None

    def run(self, ctx) -> Verdict:
        verdict = ctx.answer_verdict(self.question)
        if verdict is None:
            return Verdict(0.0, self.points, "skipped: symbolic answers are checked only by the staff grader",
                           status="failed", skipped=True)
        if verdict.correct:
            return Verdict(self.points, self.points, verdict.message)
        return self.failed(verdict.message)


@dataclass
class Predictions(Case):
    """A prediction file of the submission (`{pred} ||| {sentence}` lines), scored in the parent
    against the labels in the data directory (see grader/prediction_files.py).

    `format_share` of the points is for a file with one well-formed line per example in the
    data's order; the rest is for accuracy, by `bands` of (share of `reference_accuracy`,
    share of those points). Where the labels are hidden (all one class, as the public CFIMDB
    test file), accuracy is not scored and the case is worth only its format points."""
    file: str = ""
    labels: str = ""
    reference_accuracy: float = 1.0
    bands: tuple = ((0.95, 1.0), (0.85, 0.5), (0.7, 0.25))
    format_share: float = 0.3

    def run(self, ctx) -> Verdict:
        from grader import prediction_files

        if ctx.data_dir is None:
            return Verdict(0.0, self.points, "internal grader error: no data directory is configured for the labels; "
                           "please tell the course staff", status="failed")
        data_path = ctx.data_dir / self.labels
        text = ctx.submission.files.get(self.file)
        if text is None:
            return self.failed(f"{self.file} is not in the submission (run the training script with "
                               f"--dev_out/--test_out and include its output files)")
        try:
            data = prediction_files.read_data_file(data_path)
        except (OSError, ValueError) as exc:
            return Verdict(0.0, self.points, f"internal grader error: the labels {data_path} could not be read "
                           f"({exc}); please tell the course staff", status="failed")
        result = prediction_files.score(text.decode("utf-8", "replace"), data, name=self.labels)
        settings = ctx.assignment.predictions
        reference_accuracy = settings.get("reference_accuracy", {}).get(self.file, self.reference_accuracy)
        bands = tuple(tuple(b) for b in settings.get("bands", self.bands))
        format_points = self.points * self.format_share
        lines = [f"{self.file}: {result.n_predictions} lines for {result.n_labels} examples"
                 + (f", format {result.format!r}" if result.format else "")]
        lines += [f"  - {problem}" for problem in result.problems]
        if result.accuracy is None:
            return self.failed("\n".join(lines + ["  not scored: the file could not be matched to the data"]))
        well_formed = result.alignment == "position"
        earned = format_points if well_formed else format_points / 2
        hidden = len({e.label for e in data}) < 2
        if hidden:
            lines.append(f"  accuracy not scored: the labels of {self.labels} in {ctx.data_dir} are hidden "
                         "(staff: grade with the real labels via --data-dir)")
            return Verdict(earned, format_points, "\n".join(lines))
        accuracy_points = self.points - format_points
        earned += prediction_files.thresholds_points(result.accuracy, reference_accuracy, bands) * accuracy_points
        full = max(bands, key=lambda b: b[1])[0] * reference_accuracy
        lines.append(f"  accuracy {result.accuracy:.3f} ({result.n_correct}/{result.n_labels}); the reference "
                     f"reaches {reference_accuracy:.3f}; full points from {full:.3f}")
        return Verdict(round(earned, 4), self.points, "\n".join(lines))
