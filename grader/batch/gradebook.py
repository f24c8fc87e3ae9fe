"""The gradebook: every batch-graded submission and its per-case results, in SQLite.

Tables (one database may hold several assignments):

    students     key (SID, email or the entry's name), name, sid, email
    submissions  assignment, student, content hash, source path, when submitted, Gradescope id,
                 all submitters (JSON)
    runs         one grading of one submission: assignment version (the digest that changes with
                 the cases, the reference, the engine's staff path and torch), engine version, mode,
                 isolation, the cases graded (NULL: all), wall time, the peak resident size of
                 the student's sandbox workers (measured by their parent, wait4), score, status
                 ("graded", "grader-error", "grader-timeout"), its results.json
    results      per run and case: score, max, status, hint (the named mistake), message

The current result of a submission is, case by case, the newest result among its runs of the
current assignment version (a `--only CASE` run replaces that case's result and no other).

WAL mode and a busy timeout let two `grade-all` runs write one database at once; every write is
one short transaction, so an interrupted batch keeps every submission it finished.
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    sid TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    student_id INTEGER NOT NULL REFERENCES students(id),
    assignment TEXT NOT NULL,
    hash TEXT NOT NULL,
    source TEXT NOT NULL,
    submitted_at TEXT NOT NULL DEFAULT '',
    gradescope_id TEXT NOT NULL DEFAULT '',
    submitters TEXT NOT NULL DEFAULT '[]',
    seen_at REAL NOT NULL,
    UNIQUE (student_id, assignment, hash)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    assignment_version TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    mode TEXT NOT NULL,
    isolation TEXT NOT NULL DEFAULT '',
    only_cases TEXT,
    backend TEXT NOT NULL DEFAULT 'local',
    finished_at REAL NOT NULL,
    wall_s REAL NOT NULL,
    peak_rss_mb REAL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    results_path TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    case_name TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'visible',
    hint TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, case_name)
);
CREATE INDEX IF NOT EXISTS runs_by_submission ON runs (submission_id, assignment_version);
"""

MESSAGE_CHARS = 4000


@dataclass
class CaseResult:
    name: str
    score: float
    max_score: float
    status: str
    visibility: str = "visible"
    hint: str = ""
    message: str = ""


@dataclass
class Run:
    """One grading of one submission, as a worker reports it."""
    assignment_version: str
    engine_version: str
    mode: str
    score: float
    max_score: float
    status: str                      # "graded", "grader-error", "grader-timeout"
    wall_s: float
    cases: list[CaseResult]
    isolation: str = ""
    only_cases: tuple[str, ...] | None = None
    backend: str = "local"
    peak_rss_mb: float | None = None
    message: str = ""
    results_path: str = ""


class Gradebook:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, fn):
        """`fn(cursor)` in one immediate transaction: concurrent writers queue, never interleave."""
        cursor = self.db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            value = fn(cursor)
            cursor.execute("COMMIT")
            return value
        except BaseException:
            cursor.execute("ROLLBACK")
            raise

    # ---- writing -------------------------------------------------------------------------------
    def submission(self, assignment: str, entry, digest: str) -> int:
        """The id of this student's submission with this content (recorded on first sight)."""
        first = entry.submitters[0] if entry.submitters else None

        def write(c):
            c.execute("INSERT INTO students (key, name, sid, email) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE "
                      "SET name = CASE WHEN excluded.name != '' THEN excluded.name ELSE students.name END, "
                      "sid = CASE WHEN excluded.sid != '' THEN excluded.sid ELSE students.sid END, "
                      "email = CASE WHEN excluded.email != '' THEN excluded.email ELSE students.email END",
                      (entry.key, first.name if first else "", first.sid if first else "", first.email if first else ""))
            student = c.execute("SELECT id FROM students WHERE key = ?", (entry.key,)).fetchone()[0]
            submitters = json.dumps([vars(s) for s in entry.submitters])
            c.execute("INSERT INTO submissions (student_id, assignment, hash, source, submitted_at, gradescope_id, "
                      "submitters, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(student_id, assignment, hash) "
                      "DO UPDATE SET source = excluded.source, seen_at = excluded.seen_at",
                      (student, assignment, digest, str(entry.path), entry.submitted_at, entry.submission_id,
                       submitters, time.time()))
            return c.execute("SELECT id FROM submissions WHERE student_id = ? AND assignment = ? AND hash = ?",
                             (student, assignment, digest)).fetchone()[0]
        return self._write(write)

    def record(self, submission_id: int, run: Run) -> int:
        def write(c):
            only = json.dumps(list(run.only_cases)) if run.only_cases else None
            c.execute("INSERT INTO runs (submission_id, assignment_version, engine_version, mode, isolation, "
                      "only_cases, backend, finished_at, wall_s, peak_rss_mb, score, max_score, status, message, "
                      "results_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (submission_id, run.assignment_version, run.engine_version, run.mode, run.isolation, only,
                       run.backend, time.time(), run.wall_s, run.peak_rss_mb, run.score, run.max_score, run.status,
                       run.message[:MESSAGE_CHARS], run.results_path))
            run_id = c.lastrowid
            c.executemany("INSERT INTO results (run_id, case_name, score, max_score, status, visibility, hint, message) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [(run_id, r.name, r.score, r.max_score, r.status, r.visibility, r.hint[:MESSAGE_CHARS],
                            r.message[:MESSAGE_CHARS]) for r in run.cases])
            return run_id
        return self._write(write)

    # ---- reading -------------------------------------------------------------------------------
    def graded(self, submission_id: int, assignment_version: str) -> bool:
        """Whether a complete grading of this submission exists for this version."""
        row = self.db.execute("SELECT 1 FROM runs WHERE submission_id = ? AND assignment_version = ? AND "
                              "only_cases IS NULL AND status = 'graded' LIMIT 1",
                              (submission_id, assignment_version)).fetchone()
        return row is not None

    def current(self, assignment: str) -> list[dict]:
        """Per student, their newest submission of `assignment` and its current results: for each
        case the newest result among the runs of the newest assignment version it was graded at."""
        rows = self.db.execute(
            "SELECT st.key, st.name, st.sid, st.email, s.id, s.hash, s.submitted_at, s.gradescope_id, s.submitters "
            "FROM submissions s JOIN students st ON st.id = s.student_id WHERE s.assignment = ? "
            "AND s.seen_at = (SELECT MAX(seen_at) FROM submissions s2 WHERE s2.student_id = s.student_id "
            "AND s2.assignment = s.assignment) ORDER BY st.key", (assignment,)).fetchall()
        table = []
        for key, name, sid, email, submission_id, digest, submitted_at, gradescope_id, submitters in rows:
            runs = self.db.execute("SELECT id, assignment_version, status, wall_s, peak_rss_mb, isolation, message, "
                                   "results_path, max_score, only_cases FROM runs WHERE submission_id = ? ORDER BY id",
                                   (submission_id,)).fetchall()
            if not runs:
                continue
            version = runs[-1][1]
            latest = [r for r in runs if r[1] == version]
            cases: dict[str, CaseResult] = {}
            for run_id, *_ in latest:
                for row in self.db.execute("SELECT case_name, score, max_score, status, visibility, hint, message "
                                           "FROM results WHERE run_id = ?", (run_id,)):
                    cases[row[0]] = CaseResult(*row)
            # time, memory and status are a whole grading's, not a one-case regrade's
            last = ([r for r in latest if r[9] is None] or latest)[-1]
            table.append({
                "key": key, "name": name, "sid": sid, "email": email, "submission_id": submission_id,
                "hash": digest, "submitted_at": submitted_at, "gradescope_id": gradescope_id,
                "submitters": json.loads(submitters), "assignment_version": version,
                "status": last[2], "wall_s": last[3], "peak_rss_mb": last[4], "isolation": last[5],
                "message": last[6], "results_path": last[7],
                "score": round(sum(c.score for c in cases.values()), 4),
                "max_score": round(sum(c.max_score for c in cases.values()), 4) if cases else last[8],
                "cases": cases,
            })
        return table

    # ---- export ------------------------------------------------------------------------------
    def export_csv(self, assignment: str, style: str = "gradescope", cases: bool = False) -> str:
        """One row per submitter (a group's members each get the group's score).

        gradescope: Name, SID, Email, Score, Max Score, Status, Submission ID, Content Hash (and a
        column per case with `cases`): Gradescope's "Import Scores" matches on Email or SID.
        canvas: Student, ID, SIS User ID, SIS Login ID, Section, and the assignment's column:
        Canvas's gradebook import matches on SIS User ID (the SID) or SIS Login ID (the email);
        ID (Canvas's own) is left empty."""
        table = self.current(assignment)
        case_names = sorted({n for row in table for n in row["cases"]}) if cases else []
        out = io.StringIO()
        writer = csv.writer(out)
        if style == "canvas":
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
        else:
            writer.writerow(["Name", "SID", "Email", "Score", "Max Score", "Status", "Submission ID",
                             "Content Hash"] + case_names)
        for row in table:
            people = row["submitters"] or [{"name": row["name"], "sid": row["sid"], "email": row["email"]}]
            for person in people:
                name = person.get("name") or row["key"]
                if style == "canvas":
                    writer.writerow([name, "", person.get("sid", ""), person.get("email", ""), "", f"{row['score']:g}"])
                else:
                    writer.writerow([name, person.get("sid", ""), person.get("email", ""), f"{row['score']:g}",
                                     f"{row['max_score']:g}", row["status"], row["gradescope_id"], row["hash"][:16]]
                                    + [f"{row['cases'][n].score:g}" if n in row["cases"] else "" for n in case_names])
        return out.getvalue()

    def show(self, assignment: str) -> str:
        """The current gradebook as a terminal table."""
        table = self.current(assignment)
        if not table:
            return f"no graded submissions of {assignment} in {self.path}"
        width = max(len(r["name"] or r["key"]) for r in table) + 2
        lines = [f"{'student':<{width}} {'score':>13}  {'status':<15} {'wall':>7}  failed cases"]
        for row in table:
            failed = [n for n, c in row["cases"].items() if c.score < c.max_score]
            lines.append(f"{(row['name'] or row['key']):<{width}} {row['score']:>6g} / {row['max_score']:<5g} "
                         f"{row['status']:<15} {row['wall_s']:>6.1f}s  "
                         f"{len(failed)}" + (f" ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''})"
                                             if failed else ""))
        scores = [r["score"] for r in table]
        lines.append(f"\n{len(table)} students; mean {sum(scores) / len(scores):.4g}, "
                     f"median {sorted(scores)[len(scores) // 2]:g}")
        return "\n".join(lines)
