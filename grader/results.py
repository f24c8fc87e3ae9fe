"""Gradescope results.json (per the autograder specification) and the terminal summary.

results.json carries Markdown (`output_format: "md"`), which Gradescope renders; the terminal
gets the same verdicts as plain text (grader/feedback.py renders both)."""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from grader import feedback
from grader.runner import Report

FORMATS = ("md", "html")


def gradescope_results(report: Report, output_format: str = "md") -> dict:
    """Gradescope's results.json; each test's feedback as Markdown ("md") or HTML ("html"),
    rendered from the structured verdict (grader/feedback.py)."""
    render = feedback.markdown if output_format == "md" else feedback.html_fragment
    tests = []
    for number, (case, verdict) in enumerate(report.results, start=1):
        test = {
            "name": case.name,
            "number": str(number),
            "score": round(verdict.score, 4),
            "max_score": round(verdict.max_score, 4),
            "status": verdict.status,
            "output": render(case, verdict),
            "output_format": output_format,
            "visibility": case.visibility,
            "tags": [type(case).__name__.lower()] + (["skipped"] if verdict.skipped else []),
        }
        if verdict.extra:
            test["extra_data"] = verdict.extra
        tests.append(test)
    return {
        "score": round(report.score, 4),
        "execution_time": int(round(report.seconds)),
        "output": _overview_text(report, output_format),
        "output_format": output_format,
        "test_output_format": output_format,
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"mode": report.mode, "isolation": report.isolation, "grader": "dlgrade",
                       "staff_values_computed": report.staff_values_computed,
                       "student_peak_mb": report.student_peak_mb},
        "tests": tests,
    }


def _overview_text(report: Report, output_format: str) -> str:
    if output_format == "html":
        return "\n".join(f"<p>{html.escape(line)}</p>" for line in _overview(report))
    return "\n\n".join(feedback.escape_markdown(line) for line in _overview(report))


def feedback_markdown(report: Report) -> str:
    """Every verdict of one submission as one Markdown document (what a student reads)."""
    lines = [f"# {feedback.escape_markdown(report.assignment.title)}", "",
             *[feedback.escape_markdown(line) + "\n" for line in _overview(report)]]
    for case, verdict in report.results:
        lines += [f"## {feedback.escape_markdown(case.name)}: {verdict.score:g} / {verdict.max_score:g}", "",
                  feedback.markdown(case, verdict), ""]
    return "\n".join(lines)


def feedback_html(report: Report) -> str:
    """Every verdict of one submission as one self-contained HTML page (escaped: student output
    and errors are text, never markup)."""
    body = [f"<h1>{html.escape(report.assignment.title)}</h1>",
            *[f"<p>{html.escape(line)}</p>" for line in _overview(report)]]
    for case, verdict in report.results:
        mark = "passed" if verdict.status == "passed" else "failed"
        body.append(f'<section class="{mark}"><h2>{html.escape(case.name)}: {verdict.score:g} / '
                    f"{verdict.max_score:g}</h2>\n{feedback.html_fragment(case, verdict)}</section>")
    style = ("body{font:14px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}"
             "section.failed h2{color:#a33}section.passed h2{color:#2a6}")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(report.assignment.title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _overview(report: Report) -> list[str]:
    lines = [f"{report.assignment.title}: {report.score:g} / {report.max_score:g} points"]
    if report.mode == "student":
        lines.append("Graded locally on the public cases only.")
    lines += [f"left out: {n}" for n in report.left_out]
    skipped = [c for c, v in report.results if v.skipped]
    if skipped:
        lines.append(f"skipped here (not counted): {', '.join(c.name for c in skipped)}")
    lines += [f"note: {n}" for n in report.notes]
    return lines


def write_results(results: dict, path: str | Path) -> None:
    """Write atomically, replacing whatever is there (a submission may have planted a file)."""
    # abspath, not resolve(): a symlink planted at the results path must be replaced, not followed
    path = Path(os.path.abspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-")
    with os.fdopen(fd, "w") as f:
        json.dump(results, f, indent=2)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def summary(report: Report, verbose: bool = True) -> str:
    lines = [f"{report.assignment.title} ({report.mode} mode)", ""]
    width = max([len(c.name) for c, _ in report.results] + [10])
    for case, verdict in report.results:
        mark = "skip" if verdict.skipped else ("PASS" if verdict.status == "passed" else "FAIL")
        lines.append(f"  [{mark}] {case.name:<{width}}  {verdict.score:>5.4g} / {verdict.max_score:g}")
        if verbose and verdict.status != "passed" and not verdict.skipped:
            for line in feedback.text(case, verdict).splitlines()[:12]:
                lines.append(f"         {line}")
    lines += ["", f"  total: {report.score:.4g} / {report.max_score:g}   ({report.seconds:.1f} s; {report.isolation or 'no worker started'})"]
    lines += [f"  left out: {n}" for n in report.left_out]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
