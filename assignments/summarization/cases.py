"""Graded cases of the CS182 summarization homework, part I: the student's code on seeded inputs
with weights the grader draws, against the reference (float64, tight tolerances; float32 where a
dtype slip would show); and the course's submission_logs.json, one case per logged quantity,
against the notebook's seeded procedure replayed with the reference (notebook_logs.py).

Padding is on the right, as the course's data is. Masks are uint8, as the course builds them
(`.byte()`). Every padding case keeps at least one real key for every real query; one case has
rows that see exactly one key. Outputs on padded positions are not judged (the harness zeroes
them on both sides): the course compares real tokens only.
"""
from dataclasses import dataclass

import torch

from grader.cases import Call, In, Randn, Value
from grader.harness import HarnessCall
from grader.reported import LoggedValue

D, HEADS, FFN = 16, 4, 32
VOCAB, MAX_LEN = 50, 24


# ---- inputs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaddingMask:
    """[B, L] uint8, 1 on the right of each row's length."""
    lengths: tuple
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return (torch.arange(self.length)[None, :] >= torch.tensor(self.lengths)[:, None]).to(torch.uint8)


@dataclass(frozen=True)
class RepeatedMask:
    """A [B, L] padding mask repeated per head, [B * heads, L], as the attention sees it."""
    lengths: tuple
    length: int
    heads: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return PaddingMask(self.lengths, self.length).build(generator).repeat_interleave(self.heads, dim=0)


@dataclass(frozen=True)
class TokenIds:
    """[B, L] ids in [2, vocab) (0 is pad, 1 is eos), pad after each row's length."""
    lengths: tuple
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(2, VOCAB, (len(self.lengths), self.length), generator=generator)
        return ids.masked_fill(PaddingMask(self.lengths, self.length).build(generator).bool(), 0)


@dataclass(frozen=True)
class Labels:
    """[B, T] target ids, -100 (ignored) after each row's length."""
    lengths: tuple
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(2, VOCAB, (len(self.lengths), self.length), generator=generator)
        return ids.masked_fill(PaddingMask(self.lengths, self.length).build(generator).bool(), -100)


def _linear(w, g, name, n_out, n_in):
    w[f"{name}.weight"] = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * n_in ** -0.5
    w[f"{name}.bias"] = torch.randn(n_out, generator=g, dtype=torch.float64) * 0.1


def _norm(w, g, name, width):
    w[f"{name}.weight"] = 1 + 0.1 * torch.randn(width, generator=g, dtype=torch.float64)
    w[f"{name}.bias"] = 0.1 * torch.randn(width, generator=g, dtype=torch.float64)


def _attention(w, g, prefix):
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        _linear(w, g, f"{prefix}{name}", D, D)


def _layer(w, g, prefix, is_decoder):
    _attention(w, g, f"{prefix}self_attn.")
    _norm(w, g, f"{prefix}self_attn_ln", D)
    if is_decoder:
        _attention(w, g, f"{prefix}cross_attn.")
        _norm(w, g, f"{prefix}cross_attn_ln", D)
    _linear(w, g, f"{prefix}fc1", FFN, D)
    _linear(w, g, f"{prefix}fc2", D, FFN)
    _norm(w, g, f"{prefix}ffn_ln", D)


@dataclass(frozen=True)
class Weights:
    """The parameters of one of the course's classes, by the starter's names (float64):
    "attention" (MultiheadAttention), "encoder" / "decoder" (TransformerLayer), "model"
    (a one-layer Transformer; lm_head's weight is the tied word embedding)."""
    of: str

    def build(self, g: torch.Generator) -> dict:
        w: dict = {}
        if self.of == "attention":
            _attention(w, g, "")
        elif self.of in ("encoder", "decoder"):
            _layer(w, g, "", self.of == "decoder")
        else:
            w["emb_word.weight"] = 0.5 * torch.randn(VOCAB, D, generator=g, dtype=torch.float64)
            w["emb_pos.weight"] = 0.5 * torch.randn(MAX_LEN, D, generator=g, dtype=torch.float64)
            _norm(w, g, "emb_ln", D)
            _layer(w, g, "encoder_layers.0.", False)
            _layer(w, g, "decoder_layers.0.", True)
            w["lm_head.bias"] = 0.1 * torch.randn(VOCAB, generator=g, dtype=torch.float64)
        return w


def part1_log(assignment) -> dict:
    """The entries part I's notebook logs, replayed with the reference (staff side only)."""
    from reference.seq2seq import transformer

    from .notebook_logs import part1_log_entries
    return part1_log_entries(transformer)


OWN_LOG = HarnessCall("notebook_log", (), {"part": 1}, module="summarization_harness", needs=("summarization",),
                      shows="the notebook's logging test cells, run with your code")


def logged(key: str) -> LoggedValue:
    return LoggedValue(f"submission_logs.json: {key}", 1, key=key, aliases=("submission_log.json",),
                       expected=part1_log, call=OWN_LOG,
                       handout="upload submission_logs.json, which the notebook's test cells write")


# ---- calls --------------------------------------------------------------------------------------

def sdpa(*args, **kwargs):
    return Call("scaled_dot_product_attention", args, kwargs)


def attention_call(causal=False, masked=False):
    args = ("q", "k", "v", "W")
    kwargs = {"d_model": D, "n_heads": HEADS, "causal": causal}
    if masked:
        kwargs["key_padding_mask"] = In("mask")
    return HarnessCall("attention", args, kwargs, module="summarization_harness", needs=("summarization",),
                       shows=f"MultiheadAttention({D}, {HEADS}).forward(q, k, v"
                             + (", key_padding_mask" if masked else "") + (", causal=True" if causal else "") + ")")


def layer_call(is_decoder, p_drop=0.0):
    args = ("x", "mask", "W") + (("memory", "memory_mask") if is_decoder else ())
    kind = "decoder" if is_decoder else "encoder"
    return HarnessCall("layer", args, {"is_decoder": is_decoder, "d_model": D, "n_heads": HEADS, "d_ffn": FFN,
                                       "p_drop": p_drop},
                       module="summarization_harness", needs=("summarization",),
                       shows=f"TransformerLayer({is_decoder}, {D}, {HEADS}, {FFN}, {p_drop}).forward ({kind}"
                             + (", eval mode)" if p_drop else ")"))


def qkv(n, lq, lk, d, dtype=torch.float64):
    return {"q": Randn(n, lq, d, dtype=dtype), "k": Randn(n, lk, d, dtype=dtype), "v": Randn(n, lk, d, dtype=dtype)}


SDPA_FEEDBACK = ("scores = q k^T / sqrt(d) with d the last dimension; masked keys get -inf before the softmax "
                 "over the keys (the last axis); causal hides keys j > i")
MHA_FEEDBACK = ("project q, k, v; split D into heads of D / n_heads contiguous channels; attend per head (repeat "
                "the padding mask per head, batch-major); put the heads side by side; apply o_proj")
LAYER_FEEDBACK = ("post-LN: x = LayerNorm(x + Dropout(self_attn(x, x, x, padding_mask, causal=is_decoder))); "
                  "decoder: then the same with cross_attn(x, encoder_out, encoder_out, encoder_padding_mask); "
                  "then x = LayerNorm(x + Dropout(fc2(relu(fc1(x)))))")

CASES = [
    # scaled dot-product attention
    Value("scaled_dot_product_attention", 3, call=sdpa("q", "k", "v"), inputs=qkv(6, 5, 5, 8),
          handout="implement scaled_dot_product_attention", feedback=SDPA_FEEDBACK),
    Value("scaled_dot_product_attention: padding mask", 2, call=sdpa("q", "k", "v", "mask"),
          inputs={**qkv(3, 4, 6, 8), "mask": PaddingMask((6, 3, 1), 6)},
          handout="key_padding_mask: 1 where the key is padding", feedback=SDPA_FEEDBACK),
    Value("scaled_dot_product_attention: causal", 2, call=sdpa("q", "k", "v", causal=True), inputs=qkv(4, 5, 5, 8),
          handout="causal: query i attends to keys j <= i", feedback=SDPA_FEEDBACK),
    Value("scaled_dot_product_attention: padding and causal, one key for some rows", 2,
          call=sdpa("q", "k", "v", "mask", causal=True), inputs={**qkv(3, 5, 5, 4), "mask": PaddingMask((5, 2, 1), 5)},
          handout="key_padding_mask and causal together", feedback=SDPA_FEEDBACK),
    Value("scaled_dot_product_attention: gradients", 1,
          call=Call("scaled_dot_product_attention", ("q", "k", "v", "mask"), {"causal": True}, grad=("q", "k", "v")),
          inputs={**qkv(2, 4, 4, 6), "mask": PaddingMask((4, 3), 4), "dOut": Randn(2, 4, 6)},
          handout="implement scaled_dot_product_attention (it is trained with backpropagation)"),
    Value("scaled_dot_product_attention, float32", 1, call=sdpa("q", "k", "v", "mask"),
          inputs={**qkv(3, 4, 6, 8, torch.float32), "mask": PaddingMask((6, 3, 1), 6)},
          handout="implement scaled_dot_product_attention", feedback="keep the inputs' dtype"),
    Value("scaled_dot_product_attention, hidden sizes", 1, visibility="hidden", call=sdpa("q", "k", "v", "mask"),
          inputs={**qkv(8, 7, 9, 12), "mask": RepeatedMask((9, 4), 9, 4)}, handout="implement scaled_dot_product_attention"),

    # multi-head attention
    Value("MultiheadAttention", 3, call=attention_call(), inputs={**qkv(2, 5, 5, D), "W": Weights("attention")},
          handout="implement MultiheadAttention.forward", feedback=MHA_FEEDBACK),
    Value("MultiheadAttention: padding mask, cross-attention shapes", 2, call=attention_call(masked=True),
          inputs={**qkv(3, 4, 6, D), "mask": PaddingMask((6, 4, 2), 6), "W": Weights("attention")},
          handout="implement MultiheadAttention.forward", feedback=MHA_FEEDBACK),
    Value("MultiheadAttention: causal with padding", 2, call=attention_call(causal=True, masked=True),
          inputs={**qkv(2, 5, 5, D), "mask": PaddingMask((5, 3), 5), "W": Weights("attention")},
          handout="implement MultiheadAttention.forward", feedback=MHA_FEEDBACK),

    # layers
    Value("TransformerLayer: encoder", 3, call=layer_call(False),
          inputs={"x": Randn(3, 6, D), "mask": PaddingMask((6, 4, 2), 6), "W": Weights("encoder")},
          handout="implement TransformerLayer.forward", feedback=LAYER_FEEDBACK),
    Value("TransformerLayer: decoder", 3, call=layer_call(True),
          inputs={"x": Randn(3, 5, D), "mask": PaddingMask((5, 3, 2), 5), "memory": Randn(3, 6, D),
                  "memory_mask": PaddingMask((6, 2, 5), 6), "W": Weights("decoder")},
          handout="implement TransformerLayer.forward", feedback=LAYER_FEEDBACK),
    Value("TransformerLayer: decoder in eval mode, dropout 0.3", 1, call=layer_call(True, p_drop=0.3),
          inputs={"x": Randn(2, 4, D), "mask": PaddingMask((4, 3), 4), "memory": Randn(2, 4, D),
                  "memory_mask": PaddingMask((2, 4), 4), "W": Weights("decoder")},
          handout="dropout is only active while training (model.eval() turns it off)", feedback=LAYER_FEEDBACK),
    Value("TransformerLayer: decoder, hidden sizes", 1, visibility="hidden", call=layer_call(True),
          inputs={"x": Randn(2, 7, D), "mask": PaddingMask((7, 1), 7), "memory": Randn(2, 3, D),
                  "memory_mask": PaddingMask((3, 1), 3), "W": Weights("decoder")},
          handout="implement TransformerLayer.forward"),

    # positions and the whole model
    Value("Transformer.make_positions", 2,
          call=HarnessCall("positions", ("ids", "mask"), {"n_words": VOCAB, "max_len": MAX_LEN},
                           module="summarization_harness", needs=("summarization",),
                           shows="Transformer(...).make_positions(input_ids, padding_mask)"),
          inputs={"ids": TokenIds((7, 4, 2), 7), "mask": PaddingMask((7, 4, 2), 7)},
          handout="implement make_positions", feedback="positions are 0, 1, ..., L-1 in every row, in input_ids' dtype"),
    Value("Transformer: loss and logits", 2,
          call=HarnessCall("model_loss", ("ids", "labels", "W"),
                           {"n_words": VOCAB, "max_len": MAX_LEN, "n_layers": 1, "d_model": D, "n_heads": HEADS,
                            "d_ffn": FFN},
                           module="summarization_harness", needs=("summarization",),
                           shows="Transformer(...).forward(input_ids, None, labels): loss, logits"),
          inputs={"ids": TokenIds((8, 5, 3), 8), "labels": Labels((6, 3, 5), 6), "W": Weights("model")},
          handout="the given Transformer.forward runs your layers and make_positions"),

    # the course's log: what the student's notebook computed on the course's seeded inputs
    logged("scaled_dot_product_attention.3"),
    logged("scaled_dot_product_attention.6"),
    logged("multihead_attention.2.1"),
    logged("multihead_attention.4.1"),
    logged("transformer_layer.2.1"),
    logged("transformer_layer.4.1"),
]
