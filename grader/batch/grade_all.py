"""`dlgrade grade-all`: a whole class, graded as `dlgrade grade` grades one, into a gradebook.

    grade_all("linear_attention", "submissions/", out="grading/")     # -> BatchResult

Each submission is graded by a batch worker (grader/batch/worker.py): the same sandbox, the
same cases, the same results.json (written to OUT/results/STUDENT/results.json). This process
imports no torch: the first worker loads the assignment and reports its version and cases
(grader/batch/describe.py). The staff values are computed once for the assignment: as root, into
the oracle's disk cache by that first worker before any work is handed out, which every worker
then reads; otherwise once per worker, kept for all its submissions. Results go to the gradebook (OUT/gradebook.sqlite) as each submission
finishes, so an interrupted batch loses nothing it finished, and running it again grades only
what is missing: a submission whose content hash already has a complete grading at the
assignment's current version is skipped. Changing a case, the reference or the engine's staff
path changes that version, and everything is graded again. `only` regrades the named cases for
everyone selected (their results replace those cases' results only).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.batch.gradebook import CaseResult, Gradebook, Run
from grader.batch.pool import LocalPool, Task
from grader.batch.sources import Entry, SourceError, content_hash, find_submissions
from grader.paths import ROOT

GRADEBOOK = "gradebook.sqlite"


@dataclass
class BatchResult:
    total: int                                   # submissions in the source (after --students)
    graded: int = 0                              # graded in this run
    skipped: int = 0                             # already graded at this version
    failed: int = 0                              # grader errors and timeouts (each has a verdict)
    seconds: float = 0.0
    staff_values_computed: int = 0               # by the workers (0 once the cache is warm)
    workers_started: int = 0
    scores: dict = field(default_factory=dict)   # student key -> (score, max)


def engine_version() -> str:
    """A digest of the engine's own source: recorded with each run, for staff to tell runs apart."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "grader").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def results_folder(out: Path, key: str) -> Path:
    """OUT/results/<key>, the key made a safe folder name (a student's SID or email)."""
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", key).strip(".") or "student"
    return out / "results" / safe


def select(entries: list[Entry], students: set[str] | None) -> list[Entry]:
    """The entries whose key, SID, email or name is among `students` (None: all)."""
    if not students:
        return entries
    chosen = [e for e in entries if students & ({e.key, e.name} | {s.sid for s in e.submitters}
                                                | {s.email for s in e.submitters})]
    unknown = students - {x for e in chosen for x in ({e.key, e.name} | {s.sid for s in e.submitters}
                                                      | {s.email for s in e.submitters})}
    if unknown:
        raise SourceError(f"no submission for: {', '.join(sorted(unknown))}")
    return chosen


def grade_all(assignment_name: str, source: str | Path, out: str | Path, jobs: int | None = None,
              only: list[str] | None = None, students: set[str] | None = None, mode: str = "staff",
              data_dir: str | None = None, progress=None, pool=None) -> BatchResult:
    """Grade every (selected) submission of `source` that is not graded yet at this version.
    `progress(event, entry, reply)` is told "start" (reply: the number to grade), "skip" and
    "done"; `pool` replaces the local process pool (the Ray backend)."""
    start = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = select(find_submissions(source, out / "unpacked"), students)
    if pool is None:
        pool = LocalPool(assignment_name, jobs or os.cpu_count() or 1, mode=mode,
                         data_dir=str(Path(data_dir).resolve()) if data_dir else None)
    pool.prestart(len(entries))        # workers start while this process reads the submissions
    try:
        return _grade(assignment_name, entries, out, only, mode, progress, pool, start)
    finally:
        pool.close()


def _grade(assignment_name, entries, out, only, mode, progress, pool, start) -> BatchResult:
    info = pool.describe()             # version, cases, time limit; the cache warmed
    unknown = [name for name in only or [] if name not in info["cases"]]
    if unknown:
        raise SourceError(f"--only: {assignment_name} has no case {', '.join(map(repr, unknown))}")
    version = info["version"]
    engine = engine_version()
    result = BatchResult(total=len(entries))
    with Gradebook(out / GRADEBOOK) as book:
        todo: list[tuple[Entry, int]] = []
        for entry in entries:
            submission_id = book.submission(assignment_name, entry, content_hash(entry.path))
            if not only and book.graded(submission_id, version):
                result.skipped += 1
                if progress:
                    progress("skip", entry, None)
                continue
            todo.append((entry, submission_id))
        if progress:
            progress("start", None, len(todo))
        tasks = [Task(i, str(entry.path.resolve()), str(results_folder(out, entry.key) / "results.json"), only)
                 for i, (entry, _) in enumerate(todo)]

        def on_result(task: Task, reply: dict) -> None:
            entry, submission_id = todo[task.id]
            if reply["status"] != "graded":
                result.failed += 1
                _write_failure(Path(task.results), reply["message"])
            result.graded += 1
            result.staff_values_computed += reply.get("staff_values_computed", 0)
            result.scores[entry.key] = (reply["score"], reply["max_score"])
            book.record(submission_id, Run(
                assignment_version=version, engine_version=engine, mode=reply.get("mode", mode),
                score=reply["score"], max_score=reply["max_score"], status=reply["status"],
                wall_s=round(reply.get("seconds", 0.0), 3), cases=[CaseResult(**c) for c in reply.get("cases", [])],
                isolation=reply.get("isolation", ""), only_cases=tuple(only) if only else None,
                backend=getattr(pool, "name", "local"), peak_rss_mb=reply.get("peak_rss_mb"),
                message=reply.get("message", ""), results_path=task.results))
            if progress:
                progress("done", entry, reply)

        if tasks:
            pool.run(tasks, on_result)
        result.workers_started = getattr(pool, "started_workers", 0)
    result.seconds = time.monotonic() - start
    return result


def _write_failure(path: Path, message: str) -> None:
    """A results.json for a submission whose grading failed outside the worker's own handling."""
    from grader.results import write_results

    write_results({"score": 0.0, "output": f"{message}. Please tell the course staff.", "tests": []}, path)
