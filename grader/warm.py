"""`dlgrade warm`: compute every staff value grading asks for (the reference's values and times on
the staff inputs, each known mistake's values) once, into the oracle's disk cache (grader/oracle.py).

The Gradescope image's setup.sh runs it: every student's run then reads the values instead of
computing them, so a failing submission costs no more than a correct one and the parent never
loads the reference."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from grader.assignment import Assignment, AssignmentError
from grader.context import GradingContext
from grader.oracle import Oracle


@dataclass
class WarmResult:
    directory: Path | None       # None: no disk cache here (not root, or DLGRADE_CACHE_DIR=off)
    computed: int                # staff calls run now (the rest were cached already)
    cases: int
    seconds: float

    def message(self) -> str:
        if self.directory is None:
            return ("no disk cache here (it is kept only as root, in a 0700 directory; see DLGRADE_CACHE_DIR): "
                    f"computed {self.computed} staff values for {self.cases} cases in {self.seconds:.1f} s, kept "
                    "for this process only")
        return (f"{self.directory}: {self.computed} staff values computed for {self.cases} cases in "
                f"{self.seconds:.1f} s (the others were cached already)")


def warm(assignment: Assignment, progress=None) -> WarmResult:
    """`progress(case, done, total)` after each case."""
    if not assignment.reference_available():
        raise AssignmentError(f"{assignment.name}: warming the cache needs the reference (a staff checkout)")
    start = time.monotonic()
    oracle = Oracle.of(assignment)
    before = oracle.computed
    ctx = GradingContext(assignment, "staff", process=None)
    for done, case in enumerate(assignment.cases, start=1):
        case.warm(ctx)
        if progress:
            progress(case, done, len(assignment.cases))
    return WarmResult(oracle.directory, oracle.computed - before, len(assignment.cases), time.monotonic() - start)
