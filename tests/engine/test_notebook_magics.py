"""Notebooks as written: IPython-only lines become Python, hostile notebooks cost a note or a
NotebookError, never a crash."""
from __future__ import annotations

import json
import time
import warnings

import pytest

from grader.notebook import MAX_CELL_CHARS, MAX_CODE_CHARS, NotebookError, extract_definitions

OK_CELL = "def ok():\n    return 1\n"


def notebook(*cells) -> bytes:
    """A markdown cell, then code cells (text, or any JSON value as the raw `source`)."""
    code = [{"cell_type": "code", "source": c.splitlines(keepends=True) if isinstance(c, str) else c} for c in cells]
    return json.dumps({"cells": [{"cell_type": "markdown", "source": "# Part I"}] + code}).encode()


def run(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<extracted>", "exec"), namespace)
    return namespace


def test_magics_and_shell_escapes_inside_blocks_become_pass():
    source, notes = extract_definitions(notebook(
        "import os\n"
        "if os.environ.get('COLAB_RELEASE_TAG'):\n"
        "    !pip install einops\n"
        "    %load_ext autoreload\n"
        "def setup():\n"
        "    !nvidia-smi\n"
        "    return 'ready'\n"
        "for i in range(2):\n"
        "    if i:\n"
        "        %time train(i)\n"
        "def kept():\n"
        "    return 7\n"))
    namespace = run(source)
    assert namespace["kept"]() == 7 and namespace["setup"]() == "ready"
    assert "def setup():\n    pass\n    return 'ready'" in source
    assert notes == []


def test_assignments_from_shell_and_magics_become_none():
    source, notes = extract_definitions(notebook(
        "files = !ls\n"
        "out = %sx ls -la\n"
        "t = %timeit -o sum(range(10))\n"
        "a, b = !echo 1 2\n"
        "def listing():\n"
        "    names = !ls data\n"
        "    return names\n"))
    namespace = run(source)
    assert namespace["listing"]() is None
    assert "    names = None" in source
    # placeholders are not the student's constants
    assert not {"files", "out", "t", "a", "b"} & namespace.keys()
    assert notes == []


def test_time_keeps_its_statement_timeit_and_prun_become_pass():
    source, notes = extract_definitions(notebook(
        "%time import math\n"
        "%time BATCH = 32\n"
        "%timeit -n1 sum(range(10))\n"
        "%prun -s cumulative sum(range(10))\n"
        "%time -q weird\n"
        "def uses():\n"
        "    return math.sqrt(BATCH)\n"))
    assert run(source)["uses"]() == pytest.approx(32 ** 0.5)
    assert "%" not in source and "timeit" not in source and "prun" not in source
    assert notes == []


def test_help_syntax_becomes_pass():
    source, notes = extract_definitions(notebook(
        "import math\nmath?\n?len\nlen??\nmath.sqrt?\nmath.*sin*?\n"
        "def helped():\n    return 5\nif True:\n    helped?\n"))
    assert run(source)["helped"]() == 5
    assert notes == []


@pytest.mark.parametrize("first_lines", [
    "%%capture out --no-stderr\n", "%%time\n", "%%timeit -n1\n", "%%prun\n", "\n\n%%capture\n%%time\n"])
def test_cell_magics_with_a_python_body_keep_the_body(first_lines):
    source, notes = extract_definitions(notebook(OK_CELL, first_lines + "WIDTH = 3\ndef body():\n    return WIDTH\n"))
    namespace = run(source)
    assert namespace["body"]() == 3 and namespace["ok"]() == 1
    assert "%%" not in source and notes == []


@pytest.mark.parametrize("magic", [
    "bash", "sh", "writefile", "html", "javascript", "latex", "markdown", "script", "perl", "ruby", "svg", "sql"])
def test_cell_magics_with_another_language_skip_the_cell(magic):
    # the body happens to be valid Python: it must still not leak into the module
    source, notes = extract_definitions(notebook(OK_CELL, f"%%{magic} some args\ndef leaked():\n    return 2\n"))
    assert "leaked" not in run(source) and run(source)["ok"]() == 1
    assert notes == [f"code cell 2 is a %%{magic} cell, not Python; it was skipped"]


def test_lines_inside_strings_are_never_rewritten():
    documented = ('def documented():\n'
                  '    """Shell lines in a docstring:\n'
                  '!ls -la\n'
                  '%time f()\n'
                  '%%bash\n'
                  'x = !ls\n'
                  '?help\n'
                  'obj?\n'
                  '    """\n'
                  '    return 1')
    cell = (documented + "\n"
            "TEMPLATE = '''\n!echo hi\n%matplotlib inline\n'''\n"
            "REMAINDER = (10\n% 3)\n"
            "MODULO = 10 \\\n% 4\n"
            "!ls\n")  # the magic makes the cell fail as written, so it is rewritten
    source, notes = extract_definitions(notebook(cell))
    assert documented in source  # byte for byte
    namespace = run(source)
    assert namespace["documented"].__doc__.splitlines()[1:6] == ["!ls -la", "%time f()", "%%bash", "x = !ls", "?help"]
    assert namespace["TEMPLATE"] == "\n!echo hi\n%matplotlib inline\n"
    assert namespace["REMAINDER"] == 1 and namespace["MODULO"] == 2
    assert notes == []


def test_backslash_continued_magic_is_blanked_whole():
    source, notes = extract_definitions(notebook("!pip install torch \\\n    einops \\\n    tqdm\ndef after():\n    return 3\n"))
    assert run(source)["after"]() == 3 and notes == []


def test_assignment_detection_does_not_touch_python():
    source, notes = extract_definitions(notebook(
        "!ls\n"
        "def shout():\n"
        "    return len('a = !b')\n"          # the first '=' is inside a string
        "def compare(x, y):\n"
        "    return x == y  # x = !y\n"))
    namespace = run(source)
    assert namespace["shout"]() == 6 and namespace["compare"](1, 1) is True
    assert notes == []


def test_a_broken_cell_is_reported_with_its_number_and_line_after_rewriting():
    source, notes = extract_definitions(notebook(
        OK_CELL, "%%bash\necho\n", "!ls\n%matplotlib inline\ndef broken(:\n    pass\n", "total += !ls\ndef lost(): pass\n"))
    assert run(source)["ok"]() == 1 and "broken" not in source and "lost" not in source
    assert notes[1].startswith("code cell 3 has a syntax error (line 3: ")
    # the note names what the student will find missing
    assert notes[1].endswith("; it was skipped, so broken is not defined")
    # `+=` is not an IPython assignment: the cell really is broken
    assert notes[2].startswith("code cell 4 has a syntax error (line 1: ") and notes[2].endswith("so lost is not defined")
    assert len(notes) == 3


@pytest.mark.parametrize("cell, line", [
    ("def twice(a, a):\n    pass\n", 1),
    ("x = 1\ndef escape():\n    break\n", 3),
])
def test_what_only_the_compiler_rejects_skips_the_cell(cell, line):
    """Kept, such a definition would make the import of the whole module fail."""
    source, notes = extract_definitions(notebook(OK_CELL, cell))
    assert run(source)["ok"]() == 1
    assert len(notes) == 1 and notes[0].startswith(f"code cell 2 has a syntax error (line {line}: ")


def test_warnings_as_errors_do_not_lose_a_cell():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source, notes = extract_definitions(notebook('def pattern():\n    return "\\d+"\n'))
    assert 'return "\\d+"' in source and notes == []


DEEP = {
    "parentheses": "x = " + "(" * 10_000 + "1" + ")" * 10_000,
    "negations": "x = " + "-(" * 10_000 + "1" + ")" * 10_000,
    "lists": "x = " + "[" * 10_000 + "]" * 10_000,
    "unary minus": "x = " + "-" * 50_000 + "1",
    "not": "x = " + "not " * 20_000 + "x",
    "sum": "X = " + "+".join(["1"] * 30_000),
    "attributes": "x = a" + ".b" * 40_000,
    "attribute target": "!ls\na" + ".b" * 40_000 + " = !ls",
    "indentation": "".join("    " * i + "if x:\n" for i in range(120)) + "    " * 120 + "pass\n",
}


@pytest.mark.parametrize("name", DEEP)
def test_deeply_nested_cell_costs_only_itself(name):
    started = time.monotonic()
    source, notes = extract_definitions(notebook(OK_CELL, DEEP[name], "def later():\n    return 2\n"))
    assert time.monotonic() - started < 3
    namespace = run(source)
    assert namespace["ok"]() == 1 and namespace["later"]() == 2
    assert len(notes) == 1 and notes[0].startswith("code cell 2 ") and notes[0].endswith("it was skipped")
    assert "too large" not in notes[0]  # the depth, not the size cap, is what is tested


def test_nesting_the_compiler_cannot_take_is_reported_as_such():
    _, notes = extract_definitions(notebook("X = " + "+".join(["1"] * 30_000)))
    assert notes == ["code cell 1 is nested too deeply for Python to parse (split the expression up); it was skipped"]


def test_deeply_nested_json_is_a_notebook_error():
    started = time.monotonic()
    with pytest.raises(NotebookError, match="nested too deeply"):
        extract_definitions(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(NotebookError, match="nested too deeply"):
        extract_definitions(b'{"a": ' * 100_000 + b"1" + b"}" * 100_000)
    assert time.monotonic() - started < 3


def test_huge_cell_is_skipped_quickly():
    data = notebook(OK_CELL, ["x = 1\n" * (50 * 1024 * 1024 // 6)])
    started = time.monotonic()
    source, notes = extract_definitions(data)
    assert time.monotonic() - started < 3
    assert run(source)["ok"]() == 1
    assert notes == [f"code cell 2 is too large (52,428,798 characters, the limit is {MAX_CELL_CHARS:,}); it was skipped"]


def test_too_much_code_in_all_stops_with_one_note():
    cell = "".join(f"def f{i}():\n    return 1\n" for i in range(MAX_CELL_CHARS // 30))
    cells = [OK_CELL] + [cell] * (MAX_CODE_CHARS // len(cell) + 1) + ["def late():\n    pass\n"]
    data = notebook(*cells)
    started = time.monotonic()
    source, notes = extract_definitions(data)
    assert time.monotonic() - started < 5
    assert "def ok()" in source and "late" not in source
    assert len(notes) == 1 and "characters of code" in notes[0]


@pytest.mark.parametrize("raw_source", [{"a": 1}, 5, 1.5, None, True, ["x = 1\n", 3], [["nested"]]])
def test_source_that_is_not_text_skips_the_cell(raw_source):
    source, notes = extract_definitions(notebook(OK_CELL, raw_source, "def later():\n    return 2\n"))
    assert run(source)["later"]() == 2
    assert notes == ["code cell 2 has a source that is not text; it was skipped"]


@pytest.mark.parametrize("cell, fragment", [
    ("x = '\ud800'\n", "characters that are not allowed"),  # a lone surrogate, valid JSON
    ("x = 1\x00\n", "null bytes"),
    ("X = " + "1" * 5000 + "\n", "line 1: Exceeds the limit"),
])
def test_unreadable_characters_and_literals_skip_the_cell(cell, fragment):
    source, notes = extract_definitions(notebook(OK_CELL, cell))
    source.encode()  # the loader stores the module as UTF-8
    assert run(source)["ok"]() == 1
    assert len(notes) == 1 and fragment in notes[0] and notes[0].startswith("code cell 2 ")


@pytest.mark.parametrize("data, fragment", [
    ('{"cells": []}'.encode("utf-16"), "not UTF-8"),
    ('{"cells": [], "title": "\u00e9t\u00e9"}'.encode("latin-1"), "not UTF-8"),
    (b'{"cells": [], "n": ' + b"1" * 5000 + b"}", "not a readable"),
    (b'{"cells": 5}', "no list of cells"),
    (b'{"cells": "code"}', "no list of cells"),
    (b"[1, 2]", "no list of cells"),
    (b"null", "no list of cells"),
    (b"", "not a readable"),
])
def test_unreadable_notebooks_are_notebook_errors(data, fragment):
    with pytest.raises(NotebookError, match=fragment):
        extract_definitions(data)


def test_byte_order_mark_is_accepted():
    source, _ = extract_definitions(b"\xef\xbb\xbf" + notebook(OK_CELL))
    assert run(source)["ok"]() == 1


def test_odd_structures_and_corrupted_bytes_give_notebook_error_or_a_result():
    base = notebook(OK_CELL, "%%time\n!ls\nx = !ls\ndef f():\n    '''%doc'''\n    return x?\n")
    odd = [json.dumps({"cells": [{"cell_type": kind, "source": src}]}).encode()
           for kind in ("code", None, [], {}) for src in ("x", [], [None], {}, 0)]
    corrupted = [base[:cut] for cut in range(0, len(base), 7)] + \
                [base[:i] + bytes([byte]) + base[i + 1:] for i in range(0, len(base), 5) for byte in (0, 0x22, 0xff)]
    for data in odd + corrupted:
        try:
            source, notes = extract_definitions(data)
        except NotebookError:
            continue
        assert isinstance(source, str) and all(isinstance(n, str) for n in notes)
        compile(source, "<extracted>", "exec")
