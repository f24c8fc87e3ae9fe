"""The same reference code, submitted as a .py with another name, a folder, a zip of a folder
and a notebook, is graded alike; empty and corrupt submissions get zero with a clear note.
Every submission is graded through the CLI in a subprocess."""
from __future__ import annotations

import ast
import json
import shutil
import zipfile

import pytest

from gradingkit import (
    MODULE_FILE,
    REFERENCE_ANSWERS,
    check_honest,
    make_submission,
    reference_source,
    run_grader,
    world_writable_dir,
)

REF = reference_source()


def assert_full_marks_for_code(graded, answers_submitted: bool):
    """Every case full marks; symbolic-answer cases only when answers.toml was submitted."""
    for test in graded.tests:
        if test["tags"][0] == "answer" and not (answers_submitted and REFERENCE_ANSWERS.is_file()):
            assert test["score"] == 0, test
            continue
        assert test["score"] == test["max_score"] and test["status"] == "passed", graded.describe()
    assert graded.code_cases(), graded.describe()


def notes(graded) -> str:
    return graded.results["output"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("formats")


def test_single_file_with_another_name(base, schema):
    path = base / "single" / "my_solution.py"
    path.parent.mkdir()
    path.write_text(REF)
    graded = run_grader(path, base / "single.json")
    check_honest(graded, schema)
    assert_full_marks_for_code(graded, answers_submitted=False)
    assert f"graded my_solution.py as {MODULE_FILE}" in notes(graded), notes(graded)


def test_folder(base, schema):
    folder = make_submission(base / "folder", REF)
    (folder / "notes.txt").write_text("not code")
    graded = run_grader(folder, base / "folder.json")
    check_honest(graded, schema)
    assert_full_marks_for_code(graded, answers_submitted=True)


def test_folder_with_a_helper_module(base, schema):
    """A student's own helper module beside the graded file is importable, and they are told."""
    anchor = "def softmax_attention("
    assert REF.count(anchor) == 1
    graded_file = REF.replace(anchor, "from my_helpers import scale_of\n\n\ndef _unused_softmax_attention(")
    graded_file += "\n\nsoftmax_attention = scale_of(_unused_softmax_attention)\n"
    folder = make_submission(base / "helpers", graded_file)
    (folder / "my_helpers.py").write_text("def scale_of(fn):\n    return fn\n")
    graded = run_grader(folder, base / "helpers.json")
    check_honest(graded, schema)
    assert_full_marks_for_code(graded, answers_submitted=True)
    assert "also importable (not graded): my_helpers.py" in notes(graded), notes(graded)


def test_zip_of_a_folder(base, schema):
    folder = make_submission(base / "zipped" / "hw10", REF)
    archive = base / "submission.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"hw10/{path.name}")
        z.writestr("__MACOSX/hw10/._linear_attention.py", b"\x00\x05\x16\x07junk")
    graded = run_grader(archive, base / "zip.json")
    check_honest(graded, schema)
    assert_full_marks_for_code(graded, answers_submitted=True)
    assert f"using hw10/{MODULE_FILE} as {MODULE_FILE}" in notes(graded), notes(graded)


def _cells_from_reference(marker_path: str) -> list[dict]:
    """A notebook as a student would write it: prose, imports, one cell per function, and
    top-level code (a training loop that never ends, a shell escape) that must not run."""
    def code(text):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                "source": text.splitlines(keepends=True)}

    tree = ast.parse(REF)
    lines = REF.splitlines()
    imports = [ast.get_source_segment(REF, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    functions = ["\n".join(lines[n.lineno - 1:n.end_lineno]) for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(functions) >= 6
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# HW10: kernelized linear attention\n", "My work."]},
        code("!pip install einops\n%matplotlib inline\n" + "\n".join(imports)),
    ]
    cells += [code(f) for f in functions[:3]]
    cells.append(code(f"open({marker_path!r}, 'w').write('top-level code ran')\nprint('sanity check')"))
    cells += [code(f) for f in functions[3:]]
    cells.append(code("# train forever\nstep = 0\nwhile True:\n    step += 1\n"))
    cells.append(code("!rm -rf /\nraise SystemExit('the notebook stops here')"))
    return cells


def test_notebook(base, schema):
    markers = world_writable_dir("dlgrade-notebook-markers-")
    try:
        marker = markers / "ran"
        notebook = {"cells": _cells_from_reference(str(marker)), "metadata": {"kernelspec": {"name": "python3"}},
                    "nbformat": 4, "nbformat_minor": 5}
        path = base / "notebook" / "HW10.ipynb"
        path.parent.mkdir()
        path.write_text(json.dumps(notebook, indent=1))
        graded = run_grader(path, base / "notebook.json")
        check_honest(graded, schema)
        assert_full_marks_for_code(graded, answers_submitted=False)
        assert "HW10.ipynb" in notes(graded), notes(graded)
        assert not marker.exists(), "top-level notebook code ran"
    finally:
        shutil.rmtree(markers, ignore_errors=True)


def test_empty_folder(base, schema):
    folder = base / "empty"
    folder.mkdir()
    graded = run_grader(folder, base / "empty.json")
    check_honest(graded, schema)
    assert graded.results["score"] == 0
    assert MODULE_FILE in notes(graded) and "missing" in notes(graded), notes(graded)
    for test in graded.code_cases():
        assert test["status"] == "failed" and MODULE_FILE in test["output"], test


def test_corrupt_zip(base, schema):
    archive = base / "corrupt.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip file" + bytes(range(256)) * 4)
    graded = run_grader(archive, base / "corrupt.json")
    check_honest(graded, schema)
    assert graded.results["score"] == 0
    assert "could not be read" in notes(graded) and "zip" in notes(graded).lower(), notes(graded)
    for test in graded.code_cases():
        assert test["status"] == "failed", test
