"""How the grader calls a student's summarization code: build the course's classes with the
grader's weights, call one method, return plain tensors.

A support module of the sandbox: the same functions run on the student's module (in the child)
and on the reference's or a mistake's (in the parent), so both are called exactly alike. Every
function receives `modules` ({"summarization": module}) first. Outputs on padded positions are
zeroed before they are returned: what a padded row computes is meaningless (the course compares
only real tokens), and a right answer may compute anything there.
"""
from __future__ import annotations

import torch

from grader.harness import build, run_deterministic, student_class

MODULE = "summarization"


def _real(output, padding_mask):
    """output [B, L, D] with the rows of padded tokens set to 0; anything else as it is (the
    comparison then says what is wrong with its type or shape)."""
    if padding_mask is None or not isinstance(output, torch.Tensor) or output.dim() != 3 \
            or tuple(output.shape[:2]) != tuple(padding_mask.shape):
        return output
    return output.masked_fill(padding_mask.bool()[:, :, None], 0.0)


def attention(modules, q, k, v, weights, d_model, n_heads, key_padding_mask=None, causal=False):
    """MultiheadAttention(d_model, n_heads).forward(q, k, v, key_padding_mask, causal)."""
    layer = build(student_class(modules, MODULE, "MultiheadAttention"), d_model, n_heads, weights=weights,
                  train=False, dtype=q.dtype, what="MultiheadAttention")
    return layer(q, k, v, key_padding_mask, causal)


def layer(modules, x, padding_mask, weights, encoder_out=None, encoder_padding_mask=None, *, is_decoder, d_model,
          n_heads, d_ffn, p_drop=0.0):
    """TransformerLayer(is_decoder, d_model, n_heads, d_ffn, p_drop).forward(...) in eval mode, real
    rows only; dropout, if the layer wrongly applies it in eval mode, drops the same entries on
    both sides (the harness kit's deterministic stand-in)."""
    module = build(student_class(modules, MODULE, "TransformerLayer"), is_decoder, d_model, n_heads, d_ffn, p_drop,
                   weights=weights, train=False, dtype=x.dtype, what="TransformerLayer")
    if is_decoder:
        return _real(run_deterministic(lambda: module(x, padding_mask, encoder_out, encoder_padding_mask)),
                     padding_mask)
    return _real(run_deterministic(lambda: module(x, padding_mask)), padding_mask)


def positions(modules, input_ids, padding_mask, n_words, max_len):
    """Transformer(...).make_positions(input_ids, padding_mask)."""
    cls = student_class(modules, MODULE, "Transformer")
    model = cls(n_words, 0, 1, max_len, 1, 8, 2, 16, 0.0)
    return model.make_positions(input_ids, padding_mask)


def model_loss(modules, input_ids, labels, weights, n_words, max_len, n_layers, d_model, n_heads, d_ffn):
    """Transformer(n_words, pad 0, eos 1, ...).forward(input_ids, None, labels): (loss, logits on
    the real target positions)."""
    cls = student_class(modules, MODULE, "Transformer")
    model = build(cls, n_words, 0, 1, max_len, n_layers, d_model, n_heads, d_ffn, 0.0, weights=weights,
                  train=False, dtype=torch.float64, what="Transformer")
    output = model(input_ids, None, labels)
    return output.loss, _real(output.logits, labels == -100)


def notebook_log(modules, part):
    """The entries the course's notebook (part 1 or 2) writes to submission_logs.json, its logging
    test cells replayed with this code playing the student's (notebook_logs.py)."""
    import notebook_logs

    code = modules[MODULE]
    return notebook_logs.part1_log_entries(code) if part == 1 else notebook_logs.part2_log_entries(code)
