"""The summarization homework's part II (cached decoding) as students meet it: the course's
notebook, whose `TransformerStack` and `Transformer` subclass transformers' `PreTrainedModel` and
whose test cells build an HF `PretrainedConfig`, graded with the sandbox's light stand-in for
transformers (never the real package) at full marks, alone or zipped with its log; a step that
redoes the whole prefix loses only the cost case, with the measured exponent; a missing position
offset loses the stack's cases with the mistake named; and the timing harness decodes the same
tokens with and without the cache."""
from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import torch
from gradingkit import ROOT, check_honest, run_grader, summarization_log

REFERENCE = ROOT / "reference" / "seq2seq" / "transformer.py"
ASSIGNMENT = "summarization_part2"

# the notebook's imports: the Hugging Face names resolve to the sandbox's stand-ins
IMPORTS = """import os
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
from transformers.modeling_utils import PreTrainedModel
from transformers.configuration_utils import PretrainedConfig
from transformers.modeling_outputs import Seq2SeqLMOutput

TO_SAVE = {"time": time.time()}
"""

# part II's classes as the notebook shapes them (HF base classes, an HF config, the HF output)
STACK_AND_MODEL = '''
class TransformerStack(PreTrainedModel):
    def __init__(self, config, emb_word, emb_pos, emb_ln, is_decoder):
        super().__init__(config)
        self.emb_word, self.emb_pos, self.emb_ln = emb_word, emb_pos, emb_ln
        self.is_decoder = is_decoder
        depth = self.config.num_decoder_layers if is_decoder else self.config.num_encoder_layers
        self.layers = nn.ModuleList([
            TransformerLayer(is_decoder, self.config.d_model, self.config.d_model // self.config.d_kv,
                             self.config.d_ff, self.config.dropout_rate) for _ in range(depth)])

    def make_positions(self, input_ids, padding_mask):
        return einops.repeat(torch.arange(input_ids.size(1)).to(input_ids), "l -> b l", b=input_ids.size(0))

    def forward(self, input_ids, encoder_hidden_states=None, encoder_padding_mask=None, use_cache=None,
                past_key_values=None, **kwargs):
        if past_key_values is None:
            past_key_values = [None] * len(self.layers)
        padding_mask = input_ids.eq(self.config.pad_token_id).byte()
        pos = self.make_positions(input_ids, padding_mask)
        if use_cache and past_key_values[0] is not None:
            pos = pos + past_key_values[0].size(1)
        state = self.emb_ln(self.emb_word(input_ids) + self.emb_pos(pos))
        for i, layer in enumerate(self.layers):
            state = layer(state, padding_mask, encoder_hidden_states, encoder_padding_mask, use_cache,
                          past_key_values[i])
            if use_cache:
                state, past_key_values[i] = state
        return state, padding_mask, (past_key_values if use_cache else None)


class Transformer(PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.emb_word = nn.Embedding(config.vocab_size, config.d_model)
        self.emb_pos = nn.Embedding(config.n_positions, config.d_model)
        self.emb_ln = nn.LayerNorm(config.d_model)
        self.encoder = TransformerStack(config, self.emb_word, self.emb_pos, self.emb_ln, False)
        self.decoder = TransformerStack(config, self.emb_word, self.emb_pos, self.emb_ln, True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)
        self.lm_head.weight = self.emb_word.weight

    def forward(self, input_ids=None, decoder_input_ids=None, encoder_outputs=None, labels=None, use_cache=None,
                past_key_values=None, **kwargs):
        enc_state, enc_mask, _ = encoder_outputs if encoder_outputs is not None else self.encoder(input_ids)
        state, _, present = self.decoder(decoder_input_ids, enc_state, enc_mask, use_cache, past_key_values)
        return Seq2SeqLMOutput(logits=self.lm_head(state), past_key_values=present)
'''


def reference_parts() -> tuple[str, str]:
    """The reference's attention and layer (the cells the notebook gives and the student edits)."""
    source = REFERENCE.read_text()
    start = source.index("def scaled_dot_product_attention")
    end = source.index("class Seq2SeqOutput(NamedTuple)")
    return source[start:end], source


def course_notebook(layer_code: str) -> str:
    def code(text):
        return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": text}
    cells = [code("!python -m pip install datasets transformers einops\n%load_ext autoreload\n"),
             code(IMPORTS),
             code("import math\n" + layer_code),
             code(STACK_AND_MODEL),
             code("config = PretrainedConfig(vocab_size=32100, pad_token_id=0, eos_token_id=1, n_positions=1024,\n"
                  "    num_encoder_layers=6, num_decoder_layers=6, d_model=512, d_ff=2048, d_kv=64, dropout_rate=0.1)\n"
                  "model = Transformer(config)\nmodel.load_state_dict(torch.load('hw11.pytorch_model.bin'))\n"),
             code("trainer = Seq2SeqTrainer(model=model)\ntrainer.evaluate()\n"),
             code("with open('submission_logs.json', 'w') as f:\n    json.dump(TO_SAVE, f)\n")]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def grade_zip(tmp_path: Path, layer_code: str, log: dict | None):
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("q_summarization_part2.ipynb", course_notebook(layer_code))
        if log is not None:
            z.writestr("submission_logs.json", json.dumps(log))
    return run_grader(path, tmp_path / "results.json", assignment=ASSIGNMENT)


def lost(graded) -> dict[str, str]:
    return {t["name"]: t["output"] for t in graded.tests if t["score"] < t["max_score"]}


def test_the_course_notebook_with_its_log_earns_full_marks_on_the_transformers_stand_in(tmp_path, schema):
    layer_code, _ = reference_parts()
    graded = grade_zip(tmp_path, layer_code, summarization_log(part=2))
    check_honest(graded, schema)
    assert not lost(graded), graded.describe()
    assert graded.results["score"] == 27
    logs = [t for t in graded.tests if t["name"].startswith("submission_logs.json: ")]
    assert len(logs) == 5 and all("your submitted code writes the same entry" in t["output"] for t in logs)


def test_a_loose_file_without_a_log_loses_only_the_log(tmp_path, schema):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "summarization.py").write_text(REFERENCE.read_text())
    graded = run_grader(folder, tmp_path / "r.json", assignment=ASSIGNMENT)
    check_honest(graded, schema)
    assert set(lost(graded)) == {f"submission_logs.json: {k}" for k in (
        "transformer_layer.2.1", "transformer_layer.4.1", "transformer_layer.6.1", "transformer_layer.2.state_1",
        "transformer_layer.2.state_2")}, graded.describe()


def test_a_step_that_redoes_the_prefix_loses_only_the_cost_case_with_its_exponent(tmp_path, schema):
    layer_code, _ = reference_parts()
    slow = layer_code.replace("            attn = self.self_attn(x, kv, kv)\n",
                              "            attn = self.self_attn(kv, kv, kv, causal=True)[:, -1:]\n")
    assert slow != layer_code
    graded = grade_zip(tmp_path, slow, summarization_log(part=2))
    check_honest(graded, schema)
    failed = lost(graded)
    assert list(failed) == ["TransformerStack: one cached step is linear in the cached length"], graded.describe()
    message = next(iter(failed.values()))
    assert "work grows like N^1." in message and "N x N intermediate" in message


def test_positions_not_offset_lose_the_stacks_cases_with_the_mistake_named(tmp_path, schema):
    layer_code, _ = reference_parts()
    notebook_stack = STACK_AND_MODEL.replace("            pos = pos + past_key_values[0].size(1)\n", "            pass\n")
    assert notebook_stack != STACK_AND_MODEL
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("q_summarization_part2.ipynb",
                   course_notebook(layer_code).replace(json.dumps(STACK_AND_MODEL), json.dumps(notebook_stack)))
    graded = run_grader(path, tmp_path / "r.json", assignment=ASSIGNMENT)
    check_honest(graded, schema)
    failed = lost(graded)
    assert "TransformerStack: token by token from the cache" in failed
    assert "TransformerLayer: token by token from the cache" not in failed
    assert "add the cached length" in failed["TransformerStack: token by token from the cache"]


def _harness():
    spec = importlib.util.spec_from_file_location(
        "cached_decoding_harness", ROOT / "assignments" / ASSIGNMENT / "cached_decoding_harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_timing_harness_decodes_the_same_tokens_with_and_without_the_cache():
    # the GPU timing cases time this function; on CPU it must at least decode alike both ways
    from reference.seq2seq import transformer

    harness = _harness()
    g = torch.Generator().manual_seed(0)
    sizes = dict(d_model=16, d_kv=4, d_ff=32, n_layers=2, n_positions=40, vocab_size=50)
    weights = {name: torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3 for name, p in
               harness.stack({"summarization": transformer}, {}, torch.float64, True, **sizes).state_dict().items()}
    memory = torch.randn(3, 5, 16, generator=g, dtype=torch.float64)
    mask = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.uint8)
    steps = torch.zeros(12)
    modules = {"summarization": transformer}
    cached = harness.generate(modules, memory, mask, steps, weights, use_cache=True, **sizes)
    uncached = harness.generate(modules, memory, mask, steps, weights, use_cache=False, **sizes)
    assert cached.shape == (3, 13) and torch.equal(cached, uncached)
    assert not torch.equal(cached[0], cached[2])          # each row decodes from its own source
