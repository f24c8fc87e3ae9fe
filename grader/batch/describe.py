"""What the coordinator of a batch must know about an assignment before it hands out work: its
version (which submissions are graded already), its case names (`--only`) and its time limit.

Working it out means loading the assignment, and so importing torch: 2-3 s of CPU that, on a
machine with as many cores as workers, would compete with the workers' own start-up. So the
local pool asks its first worker, which loads the assignment anyway and answers in its "ready"
line; the Ray backend, whose workers live elsewhere, calls `describe` in the coordinator.

The first worker also warms the staff-value disk cache (as root) before it says it is ready, so
that every worker reads the values instead of computing them: the coordinator hands out no work
before that answer, so no worker computes a staff value the cache would have given it.
"""
from __future__ import annotations

WARM_MARK = "warmed-by-grade-all"     # in the oracle's directory of this assignment version


def describe(assignment, warm: bool = False) -> dict:
    """{"version", "cases", "total_timeout"} of a loaded assignment; with `warm`, its staff values
    are first computed into the disk cache where there is one (as root)."""
    from grader.oracle import Oracle, assignment_version, cache_root

    if warm and cache_root() is not None and assignment.reference_available():
        from grader.warm import warm as warm_cache

        # a batch that found every value cached leaves a mark, so that the next batch's workers
        # start grading at once (checking ~100 cached values costs a third of a second)
        directory = Oracle.of(assignment).directory
        if not (directory / WARM_MARK).is_file():
            warm_cache(assignment)
            if directory.is_dir():
                (directory / WARM_MARK).touch()
    return {"version": assignment_version(assignment), "cases": [c.name for c in assignment.cases],
            "total_timeout": assignment.total_timeout}


def describe_here(assignment_name: str, data_dir: str | None = None, warm: bool = True) -> dict:
    """`describe` in this process (loads the assignment here)."""
    from pathlib import Path

    from grader import assignment as assignments

    assignment = assignments.load(assignment_name)
    if data_dir:
        assignment.data_dir = Path(data_dir).resolve()
    return describe(assignment, warm)
