"""Notebook submissions become modules of imports, definitions and constants only."""
from __future__ import annotations

import json

import pytest

from grader.notebook import NotebookError, extract_definitions


def notebook(*cells: str, markdown: str = "# Part I") -> bytes:
    return json.dumps({"cells": [{"cell_type": "markdown", "source": markdown}]
                       + [{"cell_type": "code", "source": c.splitlines(keepends=True)} for c in cells]}).encode()


def run(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<extracted>", "exec"), namespace)
    return namespace


def test_definitions_and_constants_kept_side_effects_dropped():
    source, notes = extract_definitions(notebook(
        "import math\nD_MODEL = 64\nscale: float = 1 / math.sqrt(D_MODEL)\nprint('training...')\n",
        "def scaled(x):\n    return x * scale\n\nresult = scaled(3)\nraise SystemExit('a cell that would stop the import')\n",
    ))
    namespace = run(source)
    assert namespace["scaled"](2) == pytest.approx(2 / 8)
    assert "result" not in namespace and "print(" not in source
    assert notes == []


def test_notebook_only_imports_are_dropped_with_a_note():
    source, notes = extract_definitions(notebook(
        "from google.colab import drive\nimport matplotlib.pyplot as plt\nimport math, json\n%matplotlib inline\n!pip install x\n"))
    assert "google" not in source and "matplotlib" not in source
    assert "import math, json" in source
    assert len(notes) == 2 and all("notebook-only import" in n for n in notes)
    run(source)


def test_assignments_that_compute_are_not_constants():
    source, _ = extract_definitions(notebook("import torch\nW = torch.randn(1000, 1000)\nN = 5\nitems = data[0]\nf = lambda x: x\n"))
    assert "torch.randn" not in source and "data[0]" not in source and "lambda" not in source
    assert "N = 5" in source


def test_tensor_constants_built_by_torch_constructors_are_kept():
    # CS182's part II notebook builds its causal mask at the top level and its attention reads it
    source, _ = extract_definitions(notebook(
        "import torch\nfuture_mask = torch.triu(torch.zeros([8, 8]).fill_(float('-inf')), 1)\n"
        "eye = torch.eye(3).bool()\nW = torch.randn(8, 8)\ntokenizer = AutoTokenizer.from_pretrained('t5-small')\n"
        "weights = torch.load('model.bin')\nshifted = torch.zeros(4).to(data)\n"
        "def causal(scores):\n    return scores + future_mask[:scores.size(-1), :scores.size(-1)]\n"))
    assert "future_mask = torch.triu" in source and "eye = torch.eye(3).bool()" in source
    for dropped in ("torch.randn", "from_pretrained", "torch.load", "to(data)"):
        assert dropped not in source
    import torch
    namespace = run(source)
    assert torch.equal(namespace["causal"](torch.zeros(2, 2)), torch.tensor([[0.0, float("-inf")], [0.0, 0.0]]))


def test_syntax_error_cell_skipped_with_its_line():
    source, notes = extract_definitions(notebook("def ok():\n    return 1\n", "def broken(:\n    pass\n"))
    assert run(source)["ok"]() == 1
    assert notes and "code cell 2" in notes[0] and "line 1" in notes[0]


def test_not_a_notebook():
    with pytest.raises(NotebookError):
        extract_definitions(b"\x89PNG")


def test_future_imports_go_first():
    source, notes = extract_definitions(notebook(
        "def ok():\n    return 1\n",
        "from __future__ import annotations\ndef typed(x: Undefined) -> int:\n    return 2\n",
        "from __future__ import annotations\n"))
    assert source.startswith("from __future__ import annotations\n\ndef ok")
    assert source.count("__future__") == 1
    assert run(source)["typed"].__annotations__ == {"x": "Undefined", "return": "int"}
    assert notes == []


def test_only_real_line_ends_split_lines():
    """A form feed or U+2028 inside a string is not a line end for Python (str.splitlines says it is)."""
    source, _ = extract_definitions(notebook("def odd():\n    return 'a\u2028b\x0cc'\nN = 3\n"))
    namespace = run(source)
    assert namespace["odd"]() == "a\u2028b\x0cc" and namespace["N"] == 3
