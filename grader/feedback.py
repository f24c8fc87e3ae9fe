"""Render a case's verdict (grader/verdict.py) for a reader: terminal text, Markdown (what
results.json carries, `output_format: "md"`, so that Gradescope renders it) or HTML.

Every part the student's code produced or influenced (the outcome, which may quote their
exception, the notes, what they printed) is shown verbatim: in a fenced code block in Markdown,
escaped in a <pre> in HTML, so that nothing a submission prints becomes markup, a link or an
image. The staff's own words (called, hint, advice, the handout's sentence) are prose.
"""
from __future__ import annotations

import html
import re

MAX_OUTPUT = 8000                   # characters of one case's rendered feedback

PROSE_LABELS = {"hint": "Likely mistake", "feedback": "What to look at", "handout": "What the handout asks"}


def parts(case, verdict) -> list[tuple[str, str]]:
    """The verdict's parts in reading order, as (kind, text); empty parts left out."""
    # a case sets `feedback` only where its check failed (a check worth 0 points "passes")
    found = [("called", verdict.called), ("outcome", "\n".join([verdict.message, *verdict.notes]).strip()),
             ("feedback", verdict.feedback)]
    found.append(("hint", verdict.hint.removeprefix("likely mistake: ")))
    if verdict.failed:
        found.append(("handout", getattr(case, "handout", "")))
    found.append(("printed", verdict.student_output.rstrip()))
    return [(kind, text) for kind, text in found if text and text.strip()]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n[... truncated]"


def text(case, verdict) -> str:
    """Plain text, as a terminal shows it."""
    lines = []
    for kind, part in parts(case, verdict):
        if kind == "hint":
            lines.append(f"likely mistake: {part}")
        elif kind == "handout":
            lines.append(f"what the handout asks: {part}")
        elif kind == "printed":
            lines.append("--- your code printed ---\n" + part)
        else:
            lines.append(part)
    return _cut("\n".join(lines))


_MARKUP = re.compile(r"([\\`*\[\]<>#|~!])")


def escape_markdown(part: str) -> str:
    """Staff prose with the characters that would start markup escaped ('_' inside a word,
    as in d_model, is not markup in CommonMark and stays readable)."""
    escaped = _MARKUP.sub(r"\\\1", part)
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", escaped)


def _longest_backticks(part: str) -> int:
    return max((len(run) for run in re.findall(r"`+", part)), default=0)


def _fenced(part: str) -> str:
    """A code block no content can close: the fence is longer than any backtick run inside."""
    fence = "`" * max(3, _longest_backticks(part) + 1)
    return f"{fence}text\n{part}\n{fence}"


def _inline_code(part: str) -> str:
    fence = "`" * (_longest_backticks(part) + 1)
    pad = " " if part.startswith("`") or part.endswith("`") else ""
    return f"{fence}{pad}{part}{pad}{fence}"


def markdown(case, verdict) -> str:
    blocks = []
    for kind, part in parts(case, verdict):
        if kind == "called":
            what = part.removeprefix("called ")
            blocks.append(f"Called {_inline_code(what)}" if what != part else escape_markdown(part))
        elif kind == "outcome":
            blocks.append(_fenced(_cut(part)))
        elif kind == "printed":
            blocks.append("**Your code printed:**\n\n" + _fenced(_cut(part)))
        else:
            blocks.append(f"**{PROSE_LABELS[kind]}:** {escape_markdown(part)}")
    return "\n\n".join(blocks)


def html_fragment(case, verdict) -> str:
    blocks = []
    for kind, part in parts(case, verdict):
        if kind == "called":
            blocks.append(f"<p>{html.escape(part)}</p>")
        elif kind == "outcome":
            blocks.append(f"<pre>{html.escape(_cut(part))}</pre>")
        elif kind == "printed":
            blocks.append(f"<p><strong>Your code printed:</strong></p><pre>{html.escape(_cut(part))}</pre>")
        else:
            blocks.append(f"<p><strong>{PROSE_LABELS[kind]}:</strong> {html.escape(part)}</p>")
    return "\n".join(blocks)

