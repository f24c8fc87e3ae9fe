"""Load an assignment folder: manifest.toml, cases.py, mistakes.py, questions.py, golden/."""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tomllib
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from grader.cases import Answer
from grader.errors import AssignmentError
from grader.paths import ASSIGNMENTS, ROOT


__all__ = ["Assignment", "AssignmentError", "available", "load"]


@dataclass
class Assignment:
    name: str
    path: Path
    title: str
    default_module: str
    files: list[str]                       # what students must submit
    optional_files: list[str]
    notebook_module: str | None
    case_timeout: float                    # a case's cap; its timeout follows the reference's time
    total_timeout: float
    memory_mb: int
    reference_files: dict[str, Path]       # student file name -> staff reference source
    answers_file: str | None
    # files the student's code imports but does not submit (the course's support modules, our
    # call harness): path inside the sandbox -> source path; written beside the submission
    support_files: dict[str, Path] = field(default_factory=dict)
    # submitted files other than code that the student's sandbox reads ([sandbox]
    # submission_data: CS182's self-reported autograder.pt); the parent never opens them
    submission_data: list[str] = field(default_factory=list)
    # labels and fixtures the parent reads (never the child): DLGRADE_DATA_DIR, else the
    # manifest's [data] dir (relative to the repository root); `dlgrade grade --data-dir` wins
    data_dir: Path | None = None
    # files the parent reads from the data directory ([data] files): checked before grading
    data_files: list[str] = field(default_factory=list)
    # the whole manifest: an assignment's own code reads its own tables here (minbert's
    # [predictions]), so every setting has one source
    manifest: dict = field(default_factory=dict)
    cases: list = field(default_factory=list)
    mutants: list = field(default_factory=list)
    variants: list = field(default_factory=list)   # right answers written differently (full marks)
    # staff-side values that depend only on the case (seeded inputs): reference outputs, mutant
    # outputs, loaded module sets. Shared by the grading runs of one process (verify grades the
    # reference, the starter and every mutant with the same cases).
    cache: dict = field(default_factory=dict, repr=False)
    # mutant name -> hint, for student mode: hints.toml in a student bundle, else the mutants'
    hints: dict = field(default_factory=dict)
    questions: list = field(default_factory=list)
    timeout_floor: float = 10.0            # a case's timeout: floor + factor x the reference's time
    timeout_factor: float = 20.0

    @property
    def staff_salt(self) -> str:
        """Salts the seeds of staff-mode inputs. Derived from the reference's sources, which never
        leave the staff: students can neither know the staff inputs nor look their values up."""
        if "staff salt" not in self.cache:
            digest = hashlib.sha256()
            for name, path in sorted(self.reference_files.items()):
                digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
            self.cache["staff salt"] = digest.hexdigest()[:16]
        return self.cache["staff salt"]

    @property
    def total_points(self) -> float:
        return sum(c.points for c in self.cases)

    @property
    def golden_path(self) -> Path:
        return self.path / "golden" / "public.pt"

    @property
    def starter(self) -> Path:
        return self.path / "starter"

    def cases_using(self, filename: str) -> list:
        """The cases that run code of `filename` (a student file such as "bert.py")."""
        module = Path(filename).stem
        return [c for c in self.cases if getattr(c, "call", None)
                and module in (c.call.module or self.default_module, *c.call.needs)]

    def case_names_using(self, filename: str) -> set[str]:
        key = ("case names using", filename)
        if key not in self.cache:
            self.cache[key] = {c.name for c in self.cases_using(filename)}
        return self.cache[key]

    def support_sources(self) -> dict[str, bytes]:
        return {name: source.read_bytes() for name, source in self.support_files.items()}

    def reference_available(self) -> bool:
        return bool(self.reference_files) and all(p.is_file() for p in self.reference_files.values())


PACKAGE = "dlgrade_assignments"


def _package(name: str, path: Path) -> str:
    """The assignment folder as a package, `dlgrade_assignments.NAME`, so that its files import
    each other relatively (`from .predictions import Predictions`). Reloaded on every load."""
    if PACKAGE not in sys.modules:
        root = types.ModuleType(PACKAGE)
        root.__path__ = []
        sys.modules[PACKAGE] = root
    qualified = f"{PACKAGE}.{name}"
    for module in [m for m in sys.modules if m == qualified or m.startswith(qualified + ".")]:
        del sys.modules[module]
    package = types.ModuleType(qualified)
    package.__path__ = [str(path)]
    sys.modules[qualified] = package
    return qualified


def _load_module(package: str, name: str):
    """An assignment file; a mistake in it is the staff's, said in one line with where it is."""
    try:
        return importlib.import_module(f"{package}.{name}")
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(f"{name}.py")]
        where = f"{frames[-1].filename} line {frames[-1].lineno}" if frames else f"{name}.py"
        raise AssignmentError(f"{where}: {type(exc).__name__}: {exc}") from exc


def _support_files(path: Path, entries: list[str]) -> dict[str, Path]:
    """A file keeps its name; a folder (e.g. a stand-in package) keeps its own name as the
    package root: "sandbox_shims/sklearn" -> sklearn/__init__.py, sklearn/metrics.py."""
    found = {}
    for entry in entries:
        source = path / entry
        if source.is_file():
            found[source.name] = source
        elif source.is_dir():
            for file in sorted(source.rglob("*.py")):
                found[f"{source.name}/{file.relative_to(source).as_posix()}"] = file
        else:
            raise AssignmentError(f"{path.name}: support file {entry} does not exist")
    return found


def _data_dir(path: Path, manifest_dir: str | None) -> Path | None:
    """DLGRADE_DATA_DIR, else the assignment's own data/ (where `dlgrade package` puts it),
    else the manifest's [data] dir relative to the repository root."""
    if os.environ.get("DLGRADE_DATA_DIR"):
        return Path(os.environ["DLGRADE_DATA_DIR"])
    if (path / "data").is_dir():
        return path / "data"
    return (ROOT / manifest_dir).resolve() if manifest_dir else None


def available() -> list[str]:
    return sorted(p.name for p in ASSIGNMENTS.iterdir() if (p / "manifest.toml").is_file()) if ASSIGNMENTS.is_dir() else []


def load(name: str) -> Assignment:
    path = ASSIGNMENTS / name
    manifest_path = path / "manifest.toml"
    if not manifest_path.is_file():
        raise AssignmentError(f"unknown assignment {name!r}; available: {', '.join(available()) or 'none'}")
    with open(manifest_path, "rb") as f:
        m = tomllib.load(f)
    limits = m.get("limits", {})
    assignment = Assignment(
        name=name,
        path=path,
        title=m.get("title", name),
        default_module=m["default_module"],
        files=list(m["files"]),
        optional_files=list(m.get("optional_files", [])),
        notebook_module=m.get("notebook_module"),
        case_timeout=float(limits.get("case_timeout_s", 30)),
        total_timeout=float(limits.get("total_timeout_s", 540)),
        memory_mb=int(limits.get("memory_mb", 512)),
        timeout_floor=float(limits.get("case_timeout_floor_s", 10)),
        timeout_factor=float(limits.get("reference_time_factor", 20)),
        reference_files={k: ROOT / v for k, v in m.get("reference", {}).items()},
        answers_file=m.get("answers_file"),
        support_files=_support_files(path, m.get("sandbox", {}).get("support", [])),
        submission_data=list(m.get("sandbox", {}).get("submission_data", [])),
        data_dir=_data_dir(path, m.get("data", {}).get("dir")),
        data_files=list(m.get("data", {}).get("files", [])),
        manifest=m,
    )
    prefix = _package(name, path)
    if (path / "cases.py").is_file():
        assignment.cases = list(_load_module(prefix, "cases").CASES)
    if (path / "questions.py").is_file():
        if not assignment.answers_file:
            raise AssignmentError(f"{name}: questions.py needs `answers_file` in manifest.toml (the file students "
                                  "write their answers in, e.g. \"answers.toml\")")
        assignment.questions = list(_load_module(prefix, "questions").QUESTIONS)
        answers = assignment.answers_file
        assignment.cases += [Answer(f"{answers}: {q.id}", q.points, question=q, answers_file=answers)
                             for q in assignment.questions]
    if (path / "mistakes.py").is_file():
        mistakes = _load_module(prefix, "mistakes")
        assignment.mutants = list(mistakes.MUTANTS)
        assignment.variants = list(getattr(mistakes, "VARIANTS", []))
    assignment.hints = {m.name: m.hint for m in assignment.mutants}
    if (path / "hints.toml").is_file():
        with open(path / "hints.toml", "rb") as f:
            assignment.hints.update(tomllib.load(f))
    names = [c.name for c in assignment.cases]
    if len(set(names)) != len(names):
        raise AssignmentError(f"{name}: case names must be unique")
    _set_points(assignment, m.get("points", {}))
    return assignment


def _set_points(assignment: Assignment, points: dict) -> None:
    """The manifest's [points] table sets a case's points by name (say, to give points to a
    check the handout does not ask for, which is worth 0 by default)."""
    by_name = {c.name: c for c in assignment.cases}
    for case_name, value in points.items():
        if case_name not in by_name:
            raise AssignmentError(f"{assignment.name}: [points] names no case {case_name!r}")
        if type(value) not in (int, float) or value < 0:
            raise AssignmentError(f"{assignment.name}: [points] {case_name!r} must be a number >= 0")
        by_name[case_name].points = float(value)
