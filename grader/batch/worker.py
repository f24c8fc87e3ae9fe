"""A batch worker: grades submission after submission, exactly as `dlgrade grade` does.

    python -m grader.batch.worker ASSIGNMENT --reply-fd FD [--mode staff] [--data-dir DIR] [--warm]

It is a fresh interpreter (started by the pool, never forked from a process that holds staff
values), so the same trust boundary holds as for `dlgrade grade`: torch is imported, the sandbox's
fork server starts, and only then is the assignment (reference, cases, staff values) loaded.
Its first line on the reply descriptor says it is ready, with the assignment's version, case
names and time limit (grader/batch/describe.py), or the error that stopped it loading. Tasks then
arrive as JSON lines on stdin, one per submission; each reply is one JSON line on the reply
descriptor (stdout stays free for anything a library prints). Staff values come from the
oracle's disk cache when there is one (the first worker warmed it), else are computed once per
worker and kept for its later submissions.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch  # noqa: F401  (before the fork server starts: every sandbox shares its pages)

from grader.sandbox.zygote import Sandbox


def _merge(previous: Path, fresh: dict) -> dict:
    """results.json after regrading some cases: their tests replaced, the others kept."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        return fresh
    if not isinstance(old, dict) or not isinstance(old.get("tests"), list):
        return fresh
    replaced = {t["name"]: t for t in fresh.get("tests", [])}
    tests = [replaced.pop(t.get("name"), t) for t in old["tests"] if isinstance(t, dict)] + list(replaced.values())
    merged = dict(old, tests=tests)
    merged["score"] = round(sum(t.get("score", 0.0) for t in tests), 4)
    return merged


def grade_one(assignment, sandbox, task: dict, mode: str) -> dict:
    """Grade one submission, write its results.json, and say what came of it (plain data)."""
    from grader.results import feedback_html, feedback_markdown, gradescope_results, write_results
    from grader.runner import grade

    start = time.monotonic()
    only = set(task["only"]) if task.get("only") else None
    results_path = Path(task["results"])
    try:
        report = grade(assignment, task["path"], sandbox, mode=mode, only=only)
        results = gradescope_results(report)
        if only:
            results = _merge(results_path, results)
        else:   # what the student reads, beside results.json: the same verdicts as Markdown and HTML
            results_path.parent.mkdir(parents=True, exist_ok=True)
            (results_path.parent / "feedback.md").write_text(feedback_markdown(report), encoding="utf-8")
            (results_path.parent / "feedback.html").write_text(feedback_html(report), encoding="utf-8")
        write_results(results, results_path)
    except Exception as exc:  # a grader bug: the submission still gets a results.json, and the batch goes on
        message = f"The autograder failed internally ({type(exc).__name__}: {exc}). Please tell the course staff."
        write_results({"score": 0.0, "output": message, "tests": []}, results_path)
        return {"id": task["id"], "status": "grader-error", "message": message, "score": 0.0, "max_score": 0.0,
                "cases": [], "mode": mode, "isolation": "", "seconds": time.monotonic() - start,
                "peak_rss_mb": None, "staff_values_computed": 0}
    cases = [{"name": case.name, "score": round(v.score, 4), "max_score": round(v.max_score, 4), "status": v.status,
              "visibility": case.visibility, "hint": v.hint, "message": v.message} for case, v in report.results]
    return {"id": task["id"], "status": "graded", "message": "", "score": round(report.score, 4),
            "max_score": round(report.max_score, 4), "cases": cases, "mode": report.mode,
            "isolation": report.isolation, "seconds": time.monotonic() - start,
            "peak_rss_mb": report.student_peak_mb, "staff_values_computed": report.staff_values_computed}


def serve(assignment_name: str, reply_fd: int, mode: str, data_dir: str | None, warm: bool = False) -> int:
    from grader import assignment as assignments
    from grader.batch.describe import describe
    from grader.errors import AssignmentError

    with Sandbox.start() as sandbox:           # before anything secret is loaded
        with os.fdopen(reply_fd, "w", buffering=1) as replies:
            try:
                assignment = assignments.load(assignment_name)
                if data_dir:
                    assignment.data_dir = Path(data_dir).resolve()
                # the coordinator learns the assignment from here (it imports no torch of its own)
                ready = {"ready": os.getpid(), **describe(assignment, warm)}
            except AssignmentError as exc:
                replies.write(json.dumps({"ready": os.getpid(), "error": str(exc)}) + "\n")
                return 1
            replies.write(json.dumps(ready) + "\n")
            for line in sys.stdin:
                if not line.strip():
                    continue
                replies.write(json.dumps(grade_one(assignment, sandbox, json.loads(line), mode)) + "\n")
    return 0


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.batch.worker", description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--reply-fd", type=int, required=True)
    parser.add_argument("--mode", choices=["staff", "student"], default="staff")
    parser.add_argument("--data-dir")
    parser.add_argument("--warm", action="store_true", help="fill the staff-value disk cache (as root) first")
    args = parser.parse_args(argv)
    # the pool stops a worker with SIGTERM: clean up run directories and sandbox uids like Ctrl-C
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return serve(args.assignment, args.reply_fd, args.mode, args.data_dir, args.warm)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
