"""Load a submission (.py files, a folder, a .zip, an .ipynb) into the files the assignment
expects, with notes the student can act on. Nothing here executes student code."""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import bounded
from grader.notebook import NotebookError, extract_definitions

MAX_FILES = 500
MAX_TOTAL_BYTES = 50 * 1024 * 1024
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}


@dataclass
class Submission:
    files: dict[str, bytes] = field(default_factory=dict)   # expected name -> content
    notes: list[str] = field(default_factory=list)          # what the loader did, for the student
    missing: list[str] = field(default_factory=list)        # required files not found
    helpers: dict[str, bytes] = field(default_factory=dict) # other .py files beside them (importable)


def _candidates_from_dir(root: Path) -> dict[str, bytes]:
    found, total = {}, 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in IGNORED_PARTS]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            total += path.stat().st_size
            if len(found) >= MAX_FILES or total > MAX_TOTAL_BYTES:
                raise ValueError("the submission is too large (more than 500 files or 50 MB)")
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _candidates_from_zip(data: bytes) -> dict[str, bytes]:
    found, total = {}, 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or name.is_absolute() or ".." in name.parts or IGNORED_PARTS & set(name.parts):
                continue
            total += info.file_size
            if len(found) >= MAX_FILES or total > MAX_TOTAL_BYTES:
                raise ValueError("the zip is too large (more than 500 files or 50 MB uncompressed)")
            found[name.as_posix()] = archive.read(info)
    return found


MAX_HELPERS = 20


def _collect_helpers(sub: Submission, candidates: dict[str, bytes], used: dict[str, str]) -> None:
    """Other .py files in the folder of the graded ones: a student's own helper modules, which
    the graded files may import. Made importable (never graded), and the student is told."""
    folders = {str(PurePosixPath(rel).parent) for rel in used.values() if rel.endswith(".py")}
    taken = set(used.values())
    for rel in sorted(candidates):
        path = PurePosixPath(rel)
        if rel in taken or path.suffix != ".py" or str(path.parent) not in folders or path.name in sub.files:
            continue
        if len(sub.helpers) >= MAX_HELPERS:
            sub.notes.append(f"more than {MAX_HELPERS} other .py files: the rest were ignored")
            break
        sub.helpers[path.name] = candidates[rel]
    if sub.helpers:
        sub.notes.append(f"also importable (not graded): {', '.join(sorted(sub.helpers))}")


def looks_like_several_submissions(path: Path, required: list[str], limit: int = 2000) -> list[str]:
    """The subfolders of `path` that each hold a required file, when `path` itself (top level)
    holds none and there are at least two: a class's folders given where one submission was
    expected. Returns [] otherwise (a single submission, however nested)."""
    if not path.is_dir():
        return []
    names = set(required)
    try:
        top = list(path.iterdir())
    except OSError:
        return []
    if any(p.name in names for p in top if p.is_file()):
        return []
    holding, seen = [], 0
    for folder in sorted(p for p in top if p.is_dir() and not p.is_symlink() and p.name not in IGNORED_PARTS):
        for _, _, files in os.walk(folder):
            seen += len(files)
            if names & set(files):
                holding.append(folder.name)
                break
            if seen > limit:
                return []
    return holding if len(holding) >= 2 else []


def _extract(notebook: bytes) -> list:
    """In a bounded helper (JSON out): a notebook's definitions and notes, or its error."""
    try:
        source, notes = extract_definitions(notebook)
        return [source, notes, None]
    except NotebookError as exc:
        return [None, [], str(exc)]


def _notebook_module(notebook: bytes, budget) -> tuple[str | None, list[str], str | None]:
    timeout = budget.clip(NOTEBOOK_TIMEOUT_S) if budget else NOTEBOOK_TIMEOUT_S
    result = bounded.run(_extract, notebook, timeout=timeout, memory_mb=NOTEBOOK_MEMORY_MB, what="the notebook")
    if isinstance(result, bounded.BoundedFailure):
        return None, [], f"the notebook could not be read: {result.reason}"
    source, notes, error = result
    return source, notes, error


NOTEBOOK_TIMEOUT_S = 30
NOTEBOOK_MEMORY_MB = 512


def load(path: str | Path, required: list[str], optional: list[str], notebook_module: str | None,
         budget=None) -> Submission:
    """Notebooks are read in a bounded helper (grader/bounded.py), within what is left of the
    run's time `budget` (a student.TimeBudget)."""
    path = Path(path)
    sub = Submission()
    try:
        if path.is_dir():
            candidates = _candidates_from_dir(path)
        elif path.suffix == ".zip":
            candidates = _candidates_from_zip(path.read_bytes())
        elif path.is_file():
            candidates = {path.name: path.read_bytes()}
        else:
            sub.missing = list(required)
            sub.notes.append(f"no submission found at {path}")
            return sub
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        sub.missing = list(required)
        sub.notes.append(f"the submission could not be read: {exc}")
        return sub
    used: dict[str, str] = {}                               # expected name -> path in the submission
    # the shallowest copy of each expected name wins (a zip of a folder nests one level)
    by_depth = sorted(candidates, key=lambda p: (p.count("/"), p))
    for wanted in required + optional:
        for rel in by_depth:
            if PurePosixPath(rel).name == wanted:
                sub.files[wanted] = candidates[rel]
                used[wanted] = rel
                if rel != wanted:
                    sub.notes.append(f"using {rel} as {wanted}")
                break
    wanted_module = f"{notebook_module}.py" if notebook_module else None
    if wanted_module and wanted_module in required and wanted_module not in sub.files:
        notebooks = [p for p in by_depth if p.endswith(".ipynb")]
        if notebooks:
            source, notes, error = _notebook_module(candidates[notebooks[0]], budget)
            if error:
                sub.notes.append(f"{notebooks[0]}: {error}")
            else:
                sub.files[wanted_module] = source.encode()
                sub.notes.append(f"extracted the imports and definitions of {notebooks[0]} as {wanted_module}")
                sub.notes.extend(notes)
    python_required = [r for r in required if r.endswith(".py") and r not in sub.files]
    loose = [p for p in by_depth if p.endswith(".py") and PurePosixPath(p).name not in sub.files]
    if len(python_required) == 1 and len(loose) == 1:
        sub.files[python_required[0]] = candidates[loose[0]]
        used[python_required[0]] = loose[0]
        sub.notes.append(f"graded {loose[0]} as {python_required[0]} (the expected file name)")
    _collect_helpers(sub, candidates, used)
    sub.missing = [r for r in required if r not in sub.files]
    if sub.missing:
        seen = ", ".join(sorted(candidates)[:20]) or "nothing"
        sub.notes.append(f"missing {', '.join(sub.missing)}; the submission contained: {seen}")
    return sub
