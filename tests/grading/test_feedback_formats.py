"""results.json in either of Gradescope's formats, rendered from the same structured verdicts:
Markdown by default, HTML with `--format html`; in both, what the student's code printed or
raised is text, never markup."""
from __future__ import annotations

from gradingkit import REFERENCE, check_honest, replace_function, run_grader

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def submission(tmp_path):
    source = replace_function(REFERENCE.read_text(), "softmax_attention",
                              f"    print({HOSTILE!r})\n    raise ValueError({HOSTILE!r})\n")
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "linear_attention.py").write_text(source)
    return folder


def test_html_results_escape_what_the_student_printed_and_raised(tmp_path, schema):
    graded = run_grader(submission(tmp_path), tmp_path / "results.json", extra_args=("--format", "html"))
    check_honest(graded, schema)
    assert graded.results["output_format"] == graded.results["test_output_format"] == "html"
    test = graded.by_name["softmax_attention"]
    assert test["output_format"] == "html" and test["score"] == 0
    assert "<script>" not in test["output"] and "<img" not in test["output"]
    assert "&lt;script&gt;" in test["output"] and "<pre>" in test["output"]


def test_markdown_stays_the_default_and_fences_the_same_output(tmp_path, schema):
    graded = run_grader(submission(tmp_path), tmp_path / "results.json")
    check_honest(graded, schema)
    test = graded.by_name["softmax_attention"]
    assert test["output_format"] == "md" and "```" in test["output"] and HOSTILE in test["output"]
