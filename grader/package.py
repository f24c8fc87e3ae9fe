"""`dlgrade package`: the Gradescope autograder zip (setup.sh and run_autograder at its root)."""
from __future__ import annotations

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
    return target
