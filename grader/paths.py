"""Where things live: the source tree holds grader/, reference/ and assignments/ side by side
(in a checkout, and in the Gradescope autograder zip alike)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(os.environ.get("DLGRADE_ROOT", Path(__file__).resolve().parent.parent))
ASSIGNMENTS = ROOT / "assignments"
STAFF_DIRS = ("reference", "assignments", "tests", "docker", ".git", "dist")


def _installed_reference() -> list[str]:
    """A copy of `reference` importable from elsewhere (an installed package): staff-only too."""
    try:
        spec = importlib.util.find_spec("reference")
    except (ImportError, ValueError):
        return []
    found = []
    for location in (spec.submodule_search_locations or []) if spec else []:
        location = os.path.realpath(location)
        if not location.startswith(str(ROOT.resolve()) + os.sep):
            found.append(location)
    return found


def staff_paths(extra: list[str | Path] = ()) -> list[str]:
    """Directories a worker must never see: references, cases, mutants, labels, this suite's
    fixtures, and any installed copy of the reference."""
    paths = [str(ROOT / name) for name in STAFF_DIRS if (ROOT / name).is_dir()]
    paths += _installed_reference()
    paths += [str(Path(p).resolve()) for p in extra if p and Path(p).is_dir()]
    return sorted(set(paths))
