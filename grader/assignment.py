"""Load an assignment folder: manifest.toml, cases.py, mistakes.py, questions.py, golden/."""
from __future__ import annotations

import importlib.util
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grader.cases import Answer
from grader.paths import ASSIGNMENTS, ROOT


class AssignmentError(Exception):
    pass


@dataclass
class Assignment:
    name: str
    path: Path
    title: str
    default_module: str
    files: list[str]                       # what students must submit
    optional_files: list[str]
    notebook_module: str | None
    case_timeout: float
    total_timeout: float
    memory_mb: int
    reference_files: dict[str, Path]       # student file name -> staff reference source
    answers_file: str | None
    cases: list = field(default_factory=list)
    mutants: list = field(default_factory=list)
    questions: list = field(default_factory=list)

    @property
    def total_points(self) -> float:
        return sum(c.points for c in self.cases)

    @property
    def golden_path(self) -> Path:
        return self.path / "golden" / "public.pt"

    @property
    def starter(self) -> Path:
        return self.path / "starter"

    def reference_available(self) -> bool:
        return bool(self.reference_files) and all(p.is_file() for p in self.reference_files.values())


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
        reference_files={k: ROOT / v for k, v in m.get("reference", {}).items()},
        answers_file=m.get("answers_file"),
    )
    prefix = f"dlgrade_assignments.{name}"
    if (path / "cases.py").is_file():
        assignment.cases = list(_load_module(path / "cases.py", f"{prefix}.cases").CASES)
    if (path / "questions.py").is_file():
        assignment.questions = list(_load_module(path / "questions.py", f"{prefix}.questions").QUESTIONS)
        assignment.cases += [Answer(f"answers.toml: {q.id}", q.points, question=q) for q in assignment.questions]
    if (path / "mistakes.py").is_file():
        assignment.mutants = list(_load_module(path / "mistakes.py", f"{prefix}.mistakes").MUTANTS)
    names = [c.name for c in assignment.cases]
    if len(set(names)) != len(names):
        raise AssignmentError(f"{name}: case names must be unique")
    return assignment
