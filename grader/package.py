"""`dlgrade package`: the Gradescope autograder zip (setup.sh and run_autograder at its root),
and `dlgrade bundle`: the public student bundle (engine, starter, public golden values; no
reference, no expected answers, no mutant patches, which quote reference code)."""
from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

from grader.assignment import Assignment
from grader.paths import ROOT

SOURCE_DIRS = ("grader", "reference")
SOURCE_FILES = ("pyproject.toml", "README.md")


def _add_tree(archive: zipfile.ZipFile, folder: Path, arc_prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            archive.write(path, f"{arc_prefix}/{path.relative_to(folder).as_posix()}")


def package(assignment: Assignment, out_dir: Path | None = None) -> Path:
    out_dir = out_dir or ROOT / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{assignment.name}-autograder.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for script in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(script)
            info.external_attr = 0o755 << 16
            archive.writestr(info, (ROOT / "docker" / script).read_bytes())
        archive.writestr("ASSIGNMENT", assignment.name + "\n")
        for name in SOURCE_FILES:
            archive.write(ROOT / name, name)
        for name in SOURCE_DIRS:
            _add_tree(archive, ROOT / name, name)
        _add_tree(archive, assignment.path, f"assignments/{assignment.name}")
        # labels and fixtures travel inside the assignment folder, which workers never see
        if assignment.data_dir and assignment.data_dir.is_dir() and assignment.data_dir != assignment.path / "data":
            _add_tree(archive, assignment.data_dir, f"assignments/{assignment.name}/data")
    return target


# what never leaves the staff: expected symbolic answers, mutant patches (they quote the
# reference), and labels (students use their own copy of the course data)
STAFF_ONLY = ("questions.py", "mistakes.py", "data", "ANSWERS.md")


def student_bundle(assignment: Assignment, out_dir: Path | None = None) -> Path:
    """dist/<name>-student.zip: `pip install -e .` then `dlgrade grade <name> <submission>`
    grades the public cases against the golden values, with the named mistake hints."""
    out_dir = out_dir or ROOT / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{assignment.name}-student.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in SOURCE_FILES:
            archive.write(ROOT / name, name)
        _add_tree(archive, ROOT / "grader", "grader")
        prefix = f"assignments/{assignment.name}"
        for path in sorted(assignment.path.rglob("*")):
            relative = path.relative_to(assignment.path)
            if path.is_file() and relative.parts[0] not in STAFF_ONLY and "__pycache__" not in relative.parts:
                archive.write(path, f"{prefix}/{relative.as_posix()}")
        hints = "".join(f"{m.name} = {tomllib_string(m.hint)}\n" for m in assignment.mutants)
        archive.writestr(f"{prefix}/hints.toml", "# what a student sees when an output matches a known mistake\n" + hints)
    return target


def tomllib_string(text: str) -> str:
    """A TOML basic string (json's escaping is valid TOML for these characters)."""
    encoded = json.dumps(text)
    tomllib.loads(f"x = {encoded}")   # fail loudly rather than write a file the loader rejects
    return encoded
