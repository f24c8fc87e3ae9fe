"""`dlgrade report`: one static HTML page of class statistics, from the gradebook.

Score histogram, pass rate per case, the named mistakes by frequency (which hints fired, for how
many students), grading time and memory per submission, the submissions that hit a time or
memory limit, and identical submissions (same content hash) grouped. Plots are drawn with
matplotlib (Agg) and embedded as PNG data, the page is rendered with Jinja2 (autoescaped: hint
and case names are staff text, but student output never reaches this page), so it opens anywhere
without a network. Staff-only: never imported while grading.
"""
from __future__ import annotations

import base64
import io
import time
from collections import Counter, defaultdict
from pathlib import Path

from grader.batch.gradebook import Gradebook

LIMIT_WORDS = ("timed out", "time limit", "out of memory", "grader-timeout")


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(table: list[dict], pass_rates: list[tuple[str, float]]) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plots = {}
    maximum = max((row["max_score"] for row in table), default=1) or 1
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.hist([row["score"] for row in table], bins=min(20, max(5, len(table))), range=(0, maximum), color="#3b6ea5")
    axis.set_xlabel(f"score (of {maximum:g})")
    axis.set_ylabel("students")
    plots["histogram"] = _png(figure)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, max(2.5, 0.28 * len(pass_rates))))
    names = [name for name, _ in pass_rates]
    axis.barh(range(len(names)), [rate * 100 for _, rate in pass_rates], color="#5a9e6f")
    axis.set_yticks(range(len(names)), labels=names, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel("students passing (%)")
    plots["pass_rate"] = _png(figure)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 3))
    timed = [row for row in table if row["wall_s"] is not None]
    axis.scatter([row["wall_s"] for row in timed], [row["peak_rss_mb"] or 0 for row in timed], s=14, color="#a55a3b")
    axis.set_xlabel("grading wall time (s)")
    axis.set_ylabel("peak memory (MB)")
    plots["cost"] = _png(figure)
    plt.close(figure)
    return plots


def statistics(table: list[dict]) -> dict:
    """Everything the page shows, as plain data (also what the tests check)."""
    cases: dict[str, list] = defaultdict(list)
    for row in table:
        for name, result in row["cases"].items():
            cases[name].append(result)
    pass_rates = sorted(((name, sum(r.score >= r.max_score for r in results) / len(results))
                         for name, results in cases.items() if any(r.max_score > 0 for r in results)),
                        key=lambda item: item[1])
    mistakes: dict[str, set] = defaultdict(set)
    mistake_cases: dict[str, Counter] = defaultdict(Counter)
    for row in table:
        for name, result in row["cases"].items():
            if result.hint:
                hint = result.hint.removeprefix("likely mistake: ")
                mistakes[hint].add(row["key"])
                mistake_cases[hint][name] += 1
    limits = []
    for row in table:
        hit = [name for name, r in row["cases"].items() if any(w in r.message for w in LIMIT_WORDS)]
        if row["status"] == "grader-timeout" or hit:
            limits.append({"student": row["name"] or row["key"], "status": row["status"], "cases": hit})
    by_hash: dict[str, list] = defaultdict(list)
    for row in table:
        by_hash[row["hash"]].append(row["name"] or row["key"])
    scores = sorted(row["score"] for row in table)
    return {
        "students": len(table),
        "mean": sum(scores) / len(scores) if scores else 0.0,
        "median": scores[len(scores) // 2] if scores else 0.0,
        "max_score": max((row["max_score"] for row in table), default=0),
        "pass_rates": pass_rates,
        "mistakes": sorted(((hint, len(students), mistake_cases[hint].most_common(3))
                            for hint, students in mistakes.items()), key=lambda item: -item[1]),
        "limits": limits,
        "identical": sorted((names for names in by_hash.values() if len(names) > 1), key=len, reverse=True),
        "grader_failures": [row["name"] or row["key"] for row in table if row["status"] != "graded"],
        "rows": sorted(({"student": row["name"] or row["key"], "score": row["score"], "max_score": row["max_score"],
                         "status": row["status"], "wall_s": row["wall_s"], "peak_rss_mb": row["peak_rss_mb"]}
                        for row in table), key=lambda r: r["student"]),
    }


def render(assignment: str, gradebook: str | Path, out: str | Path) -> Path:
    """Write the page to `out` (a file path); returns it."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    with Gradebook(gradebook) as book:
        table = book.current(assignment)
    if not table:
        raise ValueError(f"no graded submissions of {assignment} in {gradebook}")
    stats = statistics(table)
    environment = Environment(loader=PackageLoader("grader.batch", "templates"), autoescape=select_autoescape(["html"]))
    page = environment.get_template("report.html").render(
        assignment=assignment, stats=stats, plots=_plots(table, stats["pass_rates"]),
        generated=time.strftime("%Y-%m-%d %H:%M"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
