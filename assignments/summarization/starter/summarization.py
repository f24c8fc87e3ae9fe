"""Transformer for summarization, part I (CS182): attention, multi-head attention, a Transformer
layer and the model's positions, built from PyTorch's basic blocks.

Fill in every function and method marked TODO. The rest is given: keep it as it is, since the
grader builds your classes with its own weights by these parameter names.

Conventions the grader checks:
- A padding mask is [B, L], nonzero (1 / True) where the token is padding; a padded key is never
  attended to. `causal=True`: query i sees keys j <= i.
- Heads own contiguous blocks of channels: head h is channels [h*Dh, (h+1)*Dh).
- Layers are post-LN: x = LayerNorm(x + Dropout(sublayer(x))), with a ReLU feed-forward; the
  decoder's self-attention is causal, its cross-attention sees the encoder's non-padded positions.
- Positions are 0..L-1 in every row.

You can submit this file (as summarization.py), or a notebook (.ipynb) holding these
definitions: the grader keeps a notebook's imports and definitions and never runs its other cells.
"""
import math
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled_dot_product_attention(q, k, v, key_padding_mask=None, causal=False):
    """softmax(q k^T / sqrt(d)) v. q [n, Lq, d], k and v [n, Lk, d]; key_padding_mask [n, Lk]
    (nonzero = padding); causal: query i sees keys j <= i. Returns [n, Lq, d]."""
    # TODO
    raise NotImplementedError("scaled_dot_product_attention")


class MultiheadAttention(nn.Module):
    """Multi-head attention: project q, k, v, split D into H heads of Dh contiguous channels,
    attend per head, concatenate the heads, project with o_proj."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        # Created in this order so that seeded construction matches the notebook's.
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.o_proj = nn.Linear(d_model, d_model)
        self.n_heads = n_heads
        self.d_head = d_model // n_heads

    def forward(self, q, k, v, key_padding_mask=None, causal=False):
        """q [B, Lq, D], k and v [B, Lk, D], key_padding_mask [B, Lk] (nonzero = padding).
        Project, split into heads, attend with scaled_dot_product_attention, merge the heads,
        project with o_proj. Returns [B, Lq, D]."""
        # TODO
        raise NotImplementedError("MultiheadAttention.forward")


class TransformerLayer(nn.Module):
    """One post-LN encoder layer (self-attention, feed-forward) or decoder layer (causal
    self-attention, cross-attention, feed-forward)."""

    def __init__(self, is_decoder, d_model, n_heads, d_ffn, p_drop):
        super().__init__()
        self.is_decoder = is_decoder
        self.self_attn = MultiheadAttention(d_model, n_heads)
        self.self_attn_drop = nn.Dropout(p_drop)
        self.self_attn_ln = nn.LayerNorm(d_model)
        if is_decoder:
            self.cross_attn = MultiheadAttention(d_model, n_heads)
            self.cross_attn_drop = nn.Dropout(p_drop)
            self.cross_attn_ln = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ffn)
        self.fc2 = nn.Linear(d_ffn, d_model)
        self.ffn_drop = nn.Dropout(p_drop)
        self.ffn_ln = nn.LayerNorm(d_model)

    def forward(self, x, padding_mask, encoder_out=None, encoder_padding_mask=None):
        """x [B, L, D], padding_mask [B, L]; decoder only: encoder_out [B, S, D],
        encoder_padding_mask [B, S]. Returns [B, L, D]."""
        # TODO
        raise NotImplementedError("TransformerLayer.forward")


class Seq2SeqOutput(NamedTuple):
    """What the notebooks return as HF's `Seq2SeqLMOutput`, read by attribute. (By index it
    differs: HF's output skips fields that are None, this tuple keeps them.)"""
    loss: Optional[torch.Tensor]
    logits: torch.Tensor                 # [B, T, V]
    past_key_values: Optional[list] = None


def shift_labels_right(labels, eos_id, pad_id):
    """Teacher-forcing decoder input: [eos, y_0, ..., y_{T-2}], with -100 (HF's label padding)
    replaced by pad_id. labels [B, T] -> [B, T]."""
    decoder_input_ids = torch.empty_like(labels)
    decoder_input_ids[:, 0] = eos_id
    decoder_input_ids[:, 1:] = labels[:, :-1]
    return decoder_input_ids.masked_fill(decoder_input_ids == -100, pad_id)


class Transformer(nn.Module):
    """Part I's model: n_layers encoder and n_layers decoder layers, shared embeddings, tied
    output layer. Parameter names are the notebook's, so its checkpoints load as they are."""

    def __init__(self, n_words, pad_id, eos_id, max_len, n_layers, d_model, n_heads, d_ffn,
                 p_drop):
        super().__init__()
        self.pad_id = pad_id
        self.eos_id = eos_id
        self.emb_word = nn.Embedding(n_words, d_model)
        self.emb_pos = nn.Embedding(max_len, d_model)
        self.emb_word.weight.data.uniform_(-0.05, 0.05)
        self.emb_pos.weight.data.uniform_(-0.05, 0.05)
        self.emb_ln = nn.LayerNorm(d_model)
        self.encoder_layers = nn.ModuleList(
            [TransformerLayer(False, d_model, n_heads, d_ffn, p_drop) for _ in range(n_layers)])
        self.decoder_layers = nn.ModuleList(
            [TransformerLayer(True, d_model, n_heads, d_ffn, p_drop) for _ in range(n_layers)])
        self.lm_head = nn.Linear(d_model, n_words)
        self.lm_head.weight = self.emb_word.weight  # tied; the bias stays lm_head's own
        self.criterion = nn.CrossEntropyLoss(ignore_index=-100)

    def make_positions(self, input_ids, padding_mask):
        """[B, L] -> [B, L] positions 0..L-1 in every row, in input_ids' dtype."""
        # TODO
        raise NotImplementedError("Transformer.make_positions")

    def embed(self, ids, padding_mask):
        """[B, L] token ids -> [B, L, D]."""
        positions = self.make_positions(ids, padding_mask)
        return self.emb_ln(self.emb_word(ids) + self.emb_pos(positions))

    def forward(self, input_ids, attention_mask, labels):
        """input_ids [B, S], labels [B, T] (-100 = ignore). attention_mask is ignored: padding
        is wherever a token equals pad_id. Returns Seq2SeqOutput(loss, logits [B, T, V])."""
        enc_padding_mask = input_ids.eq(self.pad_id)
        enc_state = self.embed(input_ids, enc_padding_mask)
        for layer in self.encoder_layers:
            enc_state = layer(enc_state, enc_padding_mask)

        decoder_input_ids = shift_labels_right(labels, self.eos_id, self.pad_id)
        dec_padding_mask = decoder_input_ids.eq(self.pad_id)
        dec_state = self.embed(decoder_input_ids, dec_padding_mask)
        for layer in self.decoder_layers:
            dec_state = layer(dec_state, dec_padding_mask, enc_state, enc_padding_mask)

        logits = self.lm_head(dec_state)
        loss = self.criterion(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
        return Seq2SeqOutput(loss, logits)
