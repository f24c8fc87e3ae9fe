"""The summarization homework (part I) as students meet it: `summarization.py` loose or as a
notebook (whose transformers / datasets imports and training cells are never run) earns full
marks; a known mistake loses its own cases, named; a layer that returns the wrong shape or
raises loses its cases with a message and never crashes the grader."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from gradingkit import ROOT, check_honest, run_grader, summarization_log

REFERENCE = ROOT / "reference" / "seq2seq" / "transformer.py"


def grade(tmp_path: Path, source: str, name: str = "submission"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "summarization.py").write_text(source)
    return run_grader(folder, tmp_path / f"{name}.json", assignment="summarization")


def lost(graded) -> dict[str, str]:
    """The code cases that lost points (these submissions upload no log)."""
    return {t["name"]: t["output"] for t in graded.tests
            if t["score"] < t["max_score"] and not t["name"].startswith("submission_logs.json: ")}


# the course notebooks' import cell: the Hugging Face names come from the sandbox's stand-ins
COURSE_IMPORTS = """import os
import base64
import functools
import gzip
import json
import time

import numpy as np
import evaluate

import einops
import torch
from datasets import load_dataset
from torch import nn
from torch.nn import functional as F
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.modeling_outputs import Seq2SeqLMOutput

TO_SAVE = {"time": time.time()}
"""


def course_notebook(source: str) -> str:
    """The course's cells around the definitions: pip, HF imports, datasets, training."""
    def code(text):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                "source": text.splitlines(keepends=True)}
    cells = [code("!python -m pip install datasets==2.11.0 transformers==4.16.2\n%load_ext autoreload\n"),
             code(COURSE_IMPORTS),
             code(source),
             code("xsum = load_dataset('xsum')\ntrainer.train()\n"),
             code("with open('submission_logs.json', 'w') as f:\n    json.dump(TO_SAVE, f)\n")]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


@pytest.mark.parametrize("form", ["py", "ipynb"])
def test_the_reference_earns_full_marks_loose_or_as_a_course_notebook_with_its_log(tmp_path, schema, form):
    log = json.dumps(reference_log())
    if form == "py":
        submission = tmp_path / "submission"
        submission.mkdir()
        (submission / "summarization.py").write_text(REFERENCE.read_text())
        (submission / "submission_logs.json").write_text(log)
    else:
        submission = tmp_path / "submission.zip"
        with zipfile.ZipFile(submission, "w") as z:
            z.writestr("q_summarize_part_1.ipynb", course_notebook(REFERENCE.read_text()))
            z.writestr("submission_logs.json", log)
    graded = run_grader(submission, tmp_path / "results.json", assignment="summarization")
    check_honest(graded, schema)
    assert graded.results["score"] == sum(t["max_score"] for t in graded.tests), graded.describe()


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
                           "TransformerLayer: decoder in eval mode, dropout 0.3",
                           "TransformerLayer: decoder, hidden sizes", "Transformer: loss and logits"}


# ---- the course's submission_logs.json ---------------------------------------------------------

LOGGED = ["scaled_dot_product_attention.3", "scaled_dot_product_attention.6", "multihead_attention.2.1",
          "multihead_attention.4.1", "transformer_layer.2.1", "transformer_layer.4.1"]


def reference_log() -> dict:
    return summarization_log(part=1)


def with_log(tmp_path: Path, log: str | bytes, name: str = "submission_logs.json", code: bool = True) -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    if code:
        (folder / "summarization.py").write_text(REFERENCE.read_text())
    (folder / name).write_bytes(log.encode() if isinstance(log, str) else log)
    return folder


def log_cases(graded) -> dict[str, dict]:
    return {t["name"].removeprefix("submission_logs.json: "): t for t in graded.tests
            if t["name"].startswith("submission_logs.json: ")}


@pytest.mark.parametrize("name", ["submission_logs.json", "submission_log.json"])
def test_a_log_alone_is_graded_as_the_course_grades_it_and_marked_self_reported(tmp_path, schema, name):
    log = reference_log()
    log["transformer_layer.4.1.value"] = [v * 1.01 for v in log["transformer_layer.4.1.value"]]
    graded = run_grader(with_log(tmp_path, json.dumps(log), name, code=False), tmp_path / "r.json",
                        assignment="summarization")
    check_honest(graded, schema)
    cases = log_cases(graded)
    assert set(cases) == set(LOGGED)
    assert [k for k, t in cases.items() if t["score"] < t["max_score"]] == ["transformer_layer.4.1"]
    assert "differ beyond rtol 0.001" in cases["transformer_layer.4.1"]["output"]
    assert all("self-reported" in t["output"] for t in cases.values())


def test_with_the_code_a_log_value_off_by_one_percent_loses_exactly_its_case(tmp_path, schema):
    log = reference_log()
    log["transformer_layer.4.1.value"] = [v * 1.01 for v in log["transformer_layer.4.1.value"]]
    graded = run_grader(with_log(tmp_path, json.dumps(log)), tmp_path / "r.json", assignment="summarization")
    check_honest(graded, schema)
    cases = log_cases(graded)
    assert [k for k, t in cases.items() if t["score"] < t["max_score"]] == ["transformer_layer.4.1"]
    # the right entries are the ones the submitted code writes, so they are no longer only self-reported
    assert all("your submitted code writes the same entry" in t["output"]
               for k, t in cases.items() if k != "transformer_layer.4.1")
    assert not [t for n, t in graded.by_name.items() if not n.startswith("submission_logs") and t["score"] < t["max_score"]]


def test_a_right_log_that_the_submitted_code_does_not_write_earns_nothing_for_those_entries(tmp_path, schema):
    # a log copied from a working notebook, uploaded with code whose attention has no 1/sqrt(d)
    folder = with_log(tmp_path, json.dumps(reference_log()))
    source = REFERENCE.read_text()
    assert "scores = q @ k.transpose(-2, -1) / math.sqrt(d)" in source
    (folder / "summarization.py").write_text(source.replace("scores = q @ k.transpose(-2, -1) / math.sqrt(d)",
                                                            "scores = q @ k.transpose(-2, -1)"))
    graded = run_grader(folder, tmp_path / "r.json", assignment="summarization")
    check_honest(graded, schema)
    cases = log_cases(graded)
    # every logged quantity runs through the attention: none is what this code writes
    assert all(t["score"] == 0 for t in cases.values()), graded.describe()
    assert all("your submitted code writes [" in t["output"] and "must come from the code you submit" in t["output"]
               for t in cases.values())


def test_a_log_with_code_that_cannot_run_the_notebooks_cells_earns_nothing_and_says_why(tmp_path, schema):
    folder = with_log(tmp_path, json.dumps(reference_log()))
    source = REFERENCE.read_text().replace("class TransformerLayer(nn.Module):", "class TransformerLayerRenamed(nn.Module):")
    (folder / "summarization.py").write_text(source)
    graded = run_grader(folder, tmp_path / "r.json", assignment="summarization")
    check_honest(graded, schema)
    cases = log_cases(graded)
    assert all(t["score"] == 0 for t in cases.values())
    first = cases["scaled_dot_product_attention.3"]["output"]
    assert "could not be checked against your code" in first and "TransformerLayer" in first, first


def hostile_logs() -> dict[str, tuple[bytes, str]]:
    log = reference_log()
    nan = dict(log, **{"multihead_attention.2.1.value": [float("nan")] * 5})
    text = dict(log, **{"multihead_attention.2.1.value": "0.1, 0.2"})
    shape = dict(log, **{"multihead_attention.2.1.shape": [2, 5, 64]})
    missing = {k: v for k, v in log.items() if not k.startswith("multihead_attention.2.1")}
    extra = dict(log, **{"my_debugging.value": [1, 2]})
    full = json.dumps(log)
    return {
        "not JSON": (b"TO_SAVE = {'time': 1}", "not valid JSON"),
        "cut short": (full[: len(full) // 2].encode(), "cut short"),
        "too large": (json.dumps(dict(log, padding="x" * 1_200_000)).encode(), "a log can have"),
        "a list": (b"[1, 2, 3]", "not the notebook's dict"),
        "nested deeply": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        "NaN values": (json.dumps(nan).encode(), "NaN or infinite"),
        "text for numbers": (json.dumps(text).encode(), "not a list of numbers"),
        "wrong shape": (json.dumps(shape).encode(), "expected [2, 5, 128]"),
        "missing entries": (json.dumps(missing).encode(), "has no entry multihead_attention.2.1.shape"),
        "extra entries": (json.dumps(extra).encode(), "my_debugging.value"),
    }


@pytest.mark.parametrize("kind", list(hostile_logs()))
def test_a_malformed_log_gets_a_message_and_a_complete_results_json(tmp_path, schema, kind):
    data, said = hostile_logs()[kind]
    graded = run_grader(with_log(tmp_path, data, code=False), tmp_path / "r.json", assignment="summarization")
    check_honest(graded, schema)
    outputs = "\n".join(t["output"] for t in log_cases(graded).values())
    assert said in outputs, outputs[:3000]
    assert len(log_cases(graded)) == len(LOGGED)


def test_a_notebook_with_one_unfilled_todo_fails_only_the_cases_of_that_cell(tmp_path, schema):
    # the course's cells, each in its own code cell; make_positions left as the handout gives it:
    # a body of comments only, so its cell does not even compile
    source = REFERENCE.read_text()
    head, rest = source.split("class Transformer(nn.Module):", 1)
    model, tail = rest.split("@dataclass\nclass TransformerConfig", 1)
    body = ('        """[B, L] -> [B, L] positions 0..L-1 in every row, same dtype as input_ids."""\n'
            "        B, L = input_ids.shape\n"
            "        return torch.arange(L, dtype=input_ids.dtype, device=input_ids.device).expand(B, L)\n")
    assert body in model
    model = model.replace(body, "        " + "#" * 72 + "\n        # TODO: implement this method\n        "
                          + "#" * 72 + "\n")
    cells = [COURSE_IMPORTS, head, "class Transformer(nn.Module):" + model, "@dataclass\nclass TransformerConfig" + tail]
    notebook = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c} for c in cells]})
    path = tmp_path / "q_summarize_part_1.ipynb"
    path.write_text(notebook)
    graded = run_grader(path, tmp_path / "r.json", assignment="summarization")
    check_honest(graded, schema)
    failed = lost(graded)
    assert set(failed) == {"Transformer.make_positions", "Transformer: loss and logits"}, failed
    assert "code cell 3" in graded.results.get("output", ""), graded.results.get("output", "")
