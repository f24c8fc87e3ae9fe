"""The floor: a gradescope-utils-style grader, with no isolation at all.

    python bench/floor_grader.py ASSIGNMENT SUBMISSION [--results PATH]

One process imports torch, imports the student's module straight from the submission folder,
and for each graded case builds the same seeded inputs as dlgrade, calls the student's function
and the reference in-process, compares them like torch.allclose with the case's tolerance, and
writes a Gradescope results.json. This is what DESIGN.md section 8 calls the floor: what a plain
gradescope-utils autograder costs. It is not a grader to use: the student's code runs in the
grader's own process and could monkeypatch torch.allclose or write its own results.json.

It reuses dlgrade's case definitions (assignments/NAME/cases.py, through grader.assignment), so
that both graders do the same calls on the same inputs and the benchmark isolates what
isolation, judging and feedback cost. As little else of the grader as possible is used:
build_inputs and case_seed (the inputs), invoke.call (how a case's spec calls a function),
load_module_set (the reference's files as a set of modules) and the case's Tolerance.

A notebook submission is read as a hand-written autograder would read it: its imports and
definitions extracted into the module (grader/notebook.py), without a bounded helper.

What it does not do, as gradescope-utils would not:
  - cases without a `call` (symbolic answers in answers.toml) are skipped, not graded;
  - Complexity cases call the student's function once per size and pass if it returns
    (gradescope-utils has no complexity measurement);
  - GPU timing cases are skipped without CUDA (as dlgrade does on Gradescope);
  - cases whose expected value comes from a data-directory fixture are skipped;
  - no time limit, no memory limit, no mistake hints.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from grader.assignment import load as load_assignment
from grader.cases import build_inputs, case_seed
from grader.modules import load_module_set
from grader.notebook import extract_definitions
from grader.sandbox.invoke import call
from grader.seeding import seed_everything


def _support_dir(assignment, where: Path) -> Path:
    """The assignment's support files (glue, the course's helper modules) where the student's
    code can import them, as gradescope-utils would ship them beside the tests."""
    where.mkdir()
    for name, source in assignment.support_files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, where / name)
    return where


def _submission_dir(path: Path, assignment, where: Path) -> Path:
    module = f"{assignment.notebook_module}.py" if assignment.notebook_module else None
    notebooks = sorted(path.glob("*.ipynb")) if path.is_dir() else [path] if path.suffix == ".ipynb" else []
    if module and notebooks and not (path.is_dir() and (path / module).is_file()):
        # as a hand-written autograder would: nbconvert-like extraction of the definitions
        where.mkdir()
        (where / module).write_text(extract_definitions(notebooks[0].read_bytes())[0])
        return where
    if path.is_dir():
        return path
    if path.suffix == ".py":     # a lone file is the assignment's first file, whatever its name
        where.mkdir()
        shutil.copyfile(path, where / assignment.files[0])
        return where
    raise SystemExit(f"floor_grader: {path}: give a folder, a .py file or an .ipynb (no .zip here)")


def _import_student(names: list[str]) -> tuple[dict, dict]:
    """(module name -> module, module name -> why it failed); a failed import fails only the
    cases that use it."""
    modules, failures = {}, {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except BaseException as exc:            # SystemExit at import too: gradescope-utils would die
            failures[name] = f"importing {name} failed: {type(exc).__name__}: {exc}"
    return modules, failures


def _reference_modules(assignment) -> dict:
    support = {name: path for name, path in assignment.support_files.items() if "/" not in name}
    reference = {name: path for name, path in assignment.reference_files.items() if name.endswith(".py")}
    return load_module_set({**support, **reference}, "reference")


def _close(expected, actual, tolerance, where: str = "output") -> str | None:
    """None when `actual` matches, else why not: torch.allclose with the case's tolerance."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            return f"{where}: got {type(actual).__name__}, expected a tensor"
        if actual.shape != expected.shape or actual.dtype != expected.dtype:
            return f"{where}: got {list(actual.shape)} {actual.dtype}, expected {list(expected.shape)} {expected.dtype}"
        expected, actual = expected.detach(), actual.detach()
        if not expected.is_floating_point():
            return None if torch.equal(actual, expected) else f"{where}: values differ"
        rtol, atol = tolerance.for_dtype(expected.dtype)
        if expected.numel():
            atol = max(atol, tolerance.scale_for_dtype(expected.dtype) * float(expected.abs().max()))
        return None if torch.allclose(actual, expected, rtol=rtol, atol=atol) else f"{where}: not close"
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return f"{where}: expected a sequence of {len(expected)}"
        reasons = [_close(e, a, tolerance, f"{where}[{i}]") for i, (e, a) in enumerate(zip(expected, actual))]
        return "\n".join(r for r in reasons if r) or None
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) < set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}"
        reasons = [_close(expected[k], actual[k], tolerance, f"{where}[{k!r}]") for k in expected]
        return "\n".join(r for r in reasons if r) or None
    return None if actual == expected else f"{where}: got {actual!r}"


def _value_case(case, spec: dict, seed: int, student: dict, reference: dict) -> str | None:
    inputs = build_inputs(case.inputs, seed)
    seed_everything(seed)
    expected = call(reference, spec, inputs)
    seed_everything(seed)
    actual = call(student, spec, inputs)
    if getattr(case, "derive", None) is not None:     # e.g. a feature map judged by its Gram matrix
        problem = case.derive_check(expected, actual) if getattr(case, "derive_check", None) else None
        if problem:
            return problem
        expected, actual = case.derive(expected), case.derive(actual)
    return _close(expected, actual, case.tolerance)


def _complexity_case(case, spec: dict, seed: int, student: dict) -> None:
    for offset, n in enumerate(case.sizes):
        seed_everything(seed)
        call(student, spec, build_inputs(case.inputs_at(n), seed + offset))


def _skip_reason(case) -> str | None:
    if getattr(case, "call", None) is None:
        return "no call to check (a symbolic answer, a self-reported number): a plain autograder does not grade it"
    if type(case).__name__ == "GpuTiming" and not torch.cuda.is_available():
        return "GPU timing, and no CUDA device"
    if getattr(case, "fixture", ""):
        return "expected value from a data-directory fixture"
    if getattr(case, "inputs_at", None) is None and not hasattr(case, "inputs"):
        return "a kind of case this grader does not know (self-reported values among them)"
    return None


def grade(assignment_name: str, submission: Path, scratch: Path) -> dict:
    start = time.monotonic()
    assignment = load_assignment(assignment_name)
    sys.path[:0] = [str(_support_dir(assignment, scratch / "support")),
                    str(_submission_dir(submission, assignment, scratch / "submission"))]
    graded = [c for c in assignment.cases if _skip_reason(c) is None]
    needed = sorted({name for c in graded for name in c.call.modules(assignment.default_module)})
    student, failures = _import_student(needed)
    reference = _reference_modules(assignment)
    tests, skipped = [], {}
    for case in assignment.cases:
        why = _skip_reason(case)
        if why:
            skipped.setdefault(why, []).append(case.name)
            continue
        spec = case.call.spec(assignment.default_module)
        seed = case_seed(assignment.name, case.name)
        broken = [failures[m] for m in case.call.modules(assignment.default_module) if m in failures]
        try:
            if broken:
                problem = broken[0]
            elif getattr(case, "inputs_at", None) is not None:
                problem = _complexity_case(case, spec, seed, student)
            else:
                problem = _value_case(case, spec, seed, student, reference)
        except Exception:
            problem = traceback.format_exc(limit=-3)
        tests.append({"name": case.name, "score": 0.0 if problem else case.points, "max_score": case.points,
                      "output": problem or "ok", "visibility": case.visibility})
    return {"score": sum(t["score"] for t in tests), "execution_time": round(time.monotonic() - start, 3),
            "output": "floor grader (no isolation); skipped: " + ("; ".join(
                f"{len(names)} case(s), {why}" for why, names in skipped.items()) or "nothing"),
            "tests": tests}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("submission", type=Path)
    parser.add_argument("--results", default="results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floor-grader-") as scratch:
        results = grade(args.assignment, args.submission, Path(scratch))
    Path(args.results).write_text(json.dumps(results, indent=2))
    maximum = sum(t["max_score"] for t in results["tests"])
    print(f"floor: {results['score']:g} / {maximum:g} on {len(results['tests'])} cases "
          f"in {results['execution_time']:.1f} s; wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
