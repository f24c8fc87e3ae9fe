"""The summarization homework (part I) as students meet it: `summarization.py` loose or as a
notebook (whose transformers / datasets imports and training cells are never run) earns full
marks; a known mistake loses its own cases, named; a layer that returns the wrong shape or
raises loses its cases with a message and never crashes the grader."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradingkit import ROOT, check_honest, run_grader

REFERENCE = ROOT / "reference" / "seq2seq" / "transformer.py"


def grade(tmp_path: Path, source: str, name: str = "submission"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "summarization.py").write_text(source)
    return run_grader(folder, tmp_path / f"{name}.json", assignment="summarization")


def lost(graded) -> dict[str, str]:
    return {t["name"]: t["output"] for t in graded.tests if t["score"] < t["max_score"]}


def course_notebook(source: str) -> str:
    """The course's cells around the definitions: pip, HF imports, datasets, training."""
    def code(text):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                "source": text.splitlines(keepends=True)}
    cells = [code("!python -m pip install datasets==2.11.0 transformers==4.16.2\n%load_ext autoreload\n"),
             code("import time\nimport torch\nfrom torch import nn\nTO_SAVE = {'time': time.time()}\n"),
             code(source),
             code("xsum = load_dataset('xsum')\ntrainer.train()\n"),
             code("with open('submission_logs.json', 'w') as f:\n    json.dump(TO_SAVE, f)\n")]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


@pytest.mark.parametrize("form", ["py", "ipynb"])
def test_the_reference_earns_full_marks_loose_or_as_a_course_notebook(tmp_path, schema, form):
    if form == "py":
        graded = grade(tmp_path, REFERENCE.read_text())
    else:
        notebook = tmp_path / "q_summarize_part_1.ipynb"
        notebook.write_text(course_notebook(REFERENCE.read_text()))
        graded = run_grader(notebook, tmp_path / "results.json", assignment="summarization")
    check_honest(graded, schema)
    assert not lost(graded), graded.describe()


def test_a_mistake_in_the_mask_loses_its_cases_with_the_mistake_named(tmp_path, schema):
    source = REFERENCE.read_text().replace(
        "            key_padding_mask = key_padding_mask.repeat_interleave(H, dim=0)  # [B*H, Lk]\n",
        "            key_padding_mask = key_padding_mask.repeat(H, 1)\n")
    graded = grade(tmp_path, source)
    check_honest(graded, schema)
    failed = lost(graded)
    assert "MultiheadAttention: padding mask, cross-attention shapes" in failed
    assert not [n for n in failed if n.startswith("scaled_dot_product_attention")]
    assert all("repeat_interleave(H, dim=0)" in out for out in failed.values()), failed


def test_a_layer_with_the_wrong_shape_or_an_exception_fails_only_its_cases(tmp_path, schema):
    source = REFERENCE.read_text().replace(
        "        x = self.ffn_ln(x + self.ffn_drop(ffn))\n",
        "        x = self.ffn_ln(x + self.ffn_drop(ffn))[:, :-1]\n        if self.is_decoder:\n"
        "            raise RuntimeError('decoder not done')\n")
    graded = grade(tmp_path, source)
    check_honest(graded, schema)
    failed = lost(graded)
    assert "shape" in failed["TransformerLayer: encoder"]
    assert "decoder not done" in failed["TransformerLayer: decoder"]
    assert set(failed) <= {"TransformerLayer: encoder", "TransformerLayer: decoder",
                           "TransformerLayer: decoder, hidden sizes", "Transformer: loss and logits"}
