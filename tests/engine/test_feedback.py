"""Verdicts rendered for a reader (grader/feedback.py): each part shown as what it is, and nothing
a submission prints or raises ever becomes markup, a link or an image."""
from __future__ import annotations

import html
import re

from grader import feedback
from grader.cases import Call, Value
from grader.verdict import Verdict

CASE = Value("softmax_attention", 2, call=Call("softmax_attention", ("Q", "K", "V")),
             handout="Softmax attention weighs value j by exp(q_i.k_j / sqrt(D)).")
HOSTILE = ("ValueError: ``` closed?\n</pre><img src=x onerror=alert(1)>\n[click](http://evil.example) "
           "![pixel](http://evil.example/p.png) **bold** <script>alert(1)</script>")


def failed(message: str = "output: largest error 0.3 at index (0, 1, 2)", **kw) -> Verdict:
    parts = dict(called="called softmax_attention(Q: [2, 24, 4] float64)", feedback="check the 1/sqrt(D) scaling",
                 hint="likely mistake: the scores are not scaled by 1/sqrt(D)", student_output="step 1\n")
    return Verdict(0.0, 2.0, message, **{**parts, **kw})


def _outside_code(markdown: str) -> str:
    """The Markdown with every fenced code block removed: what a renderer treats as markup."""
    return re.sub(r"^(`{3,})text\n.*?\n\1$", "", markdown, flags=re.DOTALL | re.MULTILINE)


def test_markdown_keeps_every_part_with_a_label():
    md = feedback.markdown(CASE, failed())
    assert md.startswith("Called `softmax_attention(Q: [2, 24, 4] float64)`")
    assert "```text\noutput: largest error 0.3 at index (0, 1, 2)\n```" in md
    assert "**Likely mistake:** the scores are not scaled by 1/sqrt(D)" in md
    assert "**What to look at:** check the 1/sqrt(D) scaling" in md
    assert "**What the handout asks:**" in md and "exp(q\\_i.k\\_j / sqrt(D))" not in md
    assert "**Your code printed:**\n\n```text\nstep 1\n```" in md


def test_what_the_student_raised_or_printed_stays_inside_code_blocks():
    md = feedback.markdown(CASE, failed(message=f"your code raised an exception:\n{HOSTILE}", student_output=HOSTILE))
    outside = _outside_code(md)
    for needle in ("<img", "<script", "](http", "**bold**", "</pre>"):
        assert needle not in outside, (needle, outside)
    # the fence is longer than any backtick run the student wrote, so it cannot be closed early
    assert md.count(HOSTILE) == 2 and "````text" in md


def test_html_escapes_everything():
    fragment = feedback.html_fragment(CASE, failed(message=HOSTILE, student_output=HOSTILE))
    assert "<img" not in fragment and "<script" not in fragment
    assert html.escape(HOSTILE) in fragment
    assert fragment.count("<pre>") == 2


def test_text_is_what_a_terminal_shows():
    text = feedback.text(CASE, failed())
    assert text.splitlines() == [
        "called softmax_attention(Q: [2, 24, 4] float64)",
        "output: largest error 0.3 at index (0, 1, 2)",
        "check the 1/sqrt(D) scaling",
        "likely mistake: the scores are not scaled by 1/sqrt(D)",
        "what the handout asks: Softmax attention weighs value j by exp(q_i.k_j / sqrt(D)).",
        "--- your code printed ---",
        "step 1",
    ]


def test_a_passed_case_shows_neither_the_handout_nor_empty_parts():
    verdict = Verdict(2.0, 2.0, "output: ok", called="called softmax_attention()")
    assert [kind for kind, _ in feedback.parts(CASE, verdict)] == ["called", "outcome"]


def test_staff_prose_cannot_open_markup_either():
    md = feedback.markdown(CASE, failed(feedback="see <b>this</b> and [that](x) *now*", hint=""))
    assert "<b>" not in _outside_code(md) and "\\[that\\](x)" in md and "\\*now\\*" in md
    assert feedback.escape_markdown("d_model and _x_") == "d_model and \\_x\\_"
