"""Where things live: the source tree holds grader/, reference/ and assignments/ side by side
(in a checkout, and in the Gradescope autograder zip alike)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("DLGRADE_ROOT", Path(__file__).resolve().parent.parent))
ASSIGNMENTS = ROOT / "assignments"


def staff_paths() -> list[str]:
    """Directories a worker must never see: references, cases, mutants, this suite's fixtures."""
    return [str(ROOT / name) for name in ("reference", "assignments", "tests", "docker", ".git", "dist") if (ROOT / name).is_dir()]
