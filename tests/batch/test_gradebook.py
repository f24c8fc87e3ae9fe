"""The gradebook's own rules, on runs recorded by hand: which result is current (the newest
assignment version; a one-case regrade replaces that case only), a resubmission replaces the
old one, a group's members each get a CSV row, and `graded` ignores partial and failed runs."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from grader.batch.gradebook import CaseResult, Gradebook, Run
from grader.batch.sources import Entry, Submitter


def run(version: str, scores: dict[str, float], only=None, status="graded", wall=1.0) -> Run:
    cases = [CaseResult(name, score, 2.0, "passed" if score == 2.0 else "failed") for name, score in scores.items()]
    return Run(version, "engine", "staff", sum(scores.values()), 2.0 * len(scores), status, wall, cases,
               only_cases=only)


def test_current_results_follow_the_newest_version_and_merge_one_case_regrades(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        ada = Entry("ada", Path("ada"), [Submitter("Ada", "1", "ada@x.edu")])
        sub = book.submission("hw", ada, "h1")
        book.record(sub, run("v1", {"a": 2.0, "b": 0.0}))
        assert book.graded(sub, "v1") and not book.graded(sub, "v2")
        book.record(sub, run("v2", {"a": 0.0, "b": 0.0}, wall=3.0))
        book.record(sub, run("v2", {"b": 2.0}, only=("b",), wall=0.1))
        row = book.current("hw")[0]
        assert {n: c.score for n, c in row["cases"].items()} == {"a": 0.0, "b": 2.0}
        assert row["score"] == 2.0 and row["max_score"] == 4.0 and row["wall_s"] == 3.0   # the full run's time
        # a one-case run or a failed one does not make a submission graded at a version
        book.record(sub, run("v3", {"b": 2.0}, only=("b",)))
        book.record(sub, run("v3", {}, status="grader-error"))
        assert not book.graded(sub, "v3")


def test_a_resubmission_replaces_the_old_one_and_groups_get_a_row_each(tmp_path):
    with Gradebook(tmp_path / "g.sqlite") as book:
        group = Entry("2001", Path("s102"), [Submitter("Ben", "2001", "ben@x.edu"), Submitter("Cleo", "2002", "cleo@x.edu")],
                      submission_id="102")
        old = book.submission("hw", group, "h-old")
        book.record(old, run("v1", {"a": 0.0}))
        new = book.submission("hw", group, "h-new")
        book.record(new, run("v1", {"a": 2.0}))
        table = book.current("hw")
        assert len(table) == 1 and table[0]["hash"] == "h-new" and table[0]["score"] == 2.0
        rows = list(csv.DictReader(io.StringIO(book.export_csv("hw", cases=True))))
        assert [(r["Name"], r["SID"], r["Score"], r["a"]) for r in rows] == [("Ben", "2001", "2", "2"),
                                                                            ("Cleo", "2002", "2", "2")]
        assert book.current("other") == [] and "no graded submissions" in book.show("other")
