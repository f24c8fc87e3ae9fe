"""Reference solution of CMU 11-711 minbert: bert.py, classifier.py and optimizer.py.

These files are written against the student API: they import the course's support modules by
their top-level names (`from base_bert import BertPreTrainedModel`, `from utils import *`),
which dlgrade provides in `assignments/minbert/starter/`. Load them as one set with
`reference.bert.load()`; never by `import reference.bert.bert`.
"""
from __future__ import annotations

from pathlib import Path

from grader.modules import load_module_set

HERE = Path(__file__).resolve().parent
STARTER = HERE.parent.parent / "assignments" / "minbert" / "starter"
REFERENCE_FILES = ("bert.py", "classifier.py", "optimizer.py")


def files() -> dict[str, Path]:
    """Student-facing file name -> path: the course's support modules as the assignment's
    manifest lists them (its [sandbox] support; the grading harness left out), plus the reference."""
    from grader.assignment import load

    support = load("minbert").support_files
    found = {name: path for name, path in support.items() if "/" not in name and path.parent.name == "starter"}
    found.update({name: HERE / name for name in REFERENCE_FILES})
    return {name: path for name, path in found.items() if path.is_file()}


def load(tag: str = "reference", sources: dict[str, str] | None = None) -> dict:
    """{"bert": module, "classifier": module, ...}; `sources` replaces some files' text."""
    return load_module_set(files(), tag, sources)
