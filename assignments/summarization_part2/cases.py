"""Graded cases of the CS182 summarization homework, part II (q_summarization_part2.ipynb): key /
value caching in `TransformerLayer.forward(..., use_cache, past_kv)` and `TransformerStack`, so
that decoding one token at a time from the cache equals the full pass; the layer's part I
behaviour kept; one cached step's work linear in the cached length (counted, not timed); and the
course's submission_logs.json, checked against what the submitted code writes.

The student's code runs on seeded inputs with weights the grader draws (float64), against the
reference (reference/seq2seq/transformer.py). Padding is on the right, masks are uint8 as the
course builds them, and rows of padded tokens are not judged (the harness zeroes them on both
sides). Position embeddings are drawn large enough that a position off by one shows.
"""
from dataclasses import dataclass

import torch

from grader.cases import Complexity, GpuTiming, In, Randn, Value
from grader.harness import HarnessCall
from grader.reported import LoggedValue

D, DKV, FFN = 16, 4, 32                 # 4 heads of 4 channels
VOCAB, POSITIONS = 50, 40
SIZES = {"d_model": D, "d_kv": DKV, "d_ff": FFN, "n_layers": 2, "n_positions": POSITIONS, "vocab_size": VOCAB}
LAYER = {"d_model": D, "n_heads": D // DKV, "d_ffn": FFN}
# the complexity case: a narrow model, so that attention's N^2 is not hidden behind N d^2
SMALL_D, SMALL_FFN, LONG = 8, 16, 300
SMALL = {"d_model": SMALL_D, "d_kv": 4, "d_ff": SMALL_FFN, "n_layers": 2, "n_positions": LONG, "vocab_size": VOCAB}
MODULES = {"module": "cached_decoding_harness", "needs": ("summarization",)}


# ---- inputs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaddingMask:
    """[B, L] uint8, 1 on the right of each row's length."""
    lengths: tuple
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return (torch.arange(self.length)[None, :] >= torch.tensor(self.lengths)[:, None]).to(torch.uint8)


@dataclass(frozen=True)
class TokenIds:
    """[B, L] ids in [2, vocab) (0 is pad, 1 is eos), pad after each row's length."""
    lengths: tuple
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(2, VOCAB, (len(self.lengths), self.length), generator=generator)
        return ids.masked_fill(PaddingMask(self.lengths, self.length).build(generator).bool(), 0)


def _linear(w, g, name, n_out, n_in):
    w[f"{name}.weight"] = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * n_in ** -0.5
    w[f"{name}.bias"] = torch.randn(n_out, generator=g, dtype=torch.float64) * 0.1


def _norm(w, g, name, width):
    w[f"{name}.weight"] = 1 + 0.1 * torch.randn(width, generator=g, dtype=torch.float64)
    w[f"{name}.bias"] = 0.1 * torch.randn(width, generator=g, dtype=torch.float64)


def _layer(w, g, prefix, d, ffn, is_decoder):
    for block in ("self_attn",) + (("cross_attn",) if is_decoder else ()):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            _linear(w, g, f"{prefix}{block}.{name}", d, d)
        _norm(w, g, f"{prefix}{block}_ln", d)
    _linear(w, g, f"{prefix}fc1", ffn, d)
    _linear(w, g, f"{prefix}fc2", d, ffn)
    _norm(w, g, f"{prefix}ffn_ln", d)


@dataclass(frozen=True)
class LayerWeights:
    """A TransformerLayer's parameters by the starter's names (float64)."""
    is_decoder: bool

    def build(self, g: torch.Generator) -> dict:
        w: dict = {}
        _layer(w, g, "", D, FFN, self.is_decoder)
        return w


@dataclass(frozen=True)
class StackWeights:
    """A 2-layer TransformerStack's parameters: the shared embeddings ("emb_word", "emb_pos",
    "emb_ln") and "layers.{i}." of each layer (float64)."""
    is_decoder: bool = True
    d: int = D
    ffn: int = FFN
    positions: int = POSITIONS

    def build(self, g: torch.Generator) -> dict:
        w = {"emb_word.weight": 0.5 * torch.randn(VOCAB, self.d, generator=g, dtype=torch.float64),
             "emb_pos.weight": 0.5 * torch.randn(self.positions, self.d, generator=g, dtype=torch.float64)}
        _norm(w, g, "emb_ln", self.d)
        for i in range(2):
            _layer(w, g, f"layers.{i}.", self.d, self.ffn, self.is_decoder)
        return w


def part2_log(assignment) -> dict:
    """The entries part II's notebook logs, replayed with the reference (staff side only), by
    part I's notebook_logs.py (a support file of this assignment)."""
    import importlib.util

    from reference.seq2seq import transformer

    spec = importlib.util.spec_from_file_location("summarization_notebook_logs",
                                                  assignment.support_files["notebook_logs.py"])
    notebook_logs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebook_logs)
    return notebook_logs.part2_log_entries(transformer)


OWN_LOG = HarnessCall("notebook_log", (), {}, shows="the notebook's logging test cells, run with your code", **MODULES)


def logged(key: str) -> LoggedValue:
    return LoggedValue(f"submission_logs.json: {key}", 1, key=key, aliases=("submission_log.json",),
                       expected=part2_log, call=OWN_LOG,
                       handout="upload submission_logs.json, which the notebook's test cells write")


# ---- calls --------------------------------------------------------------------------------------

def layer_full(is_decoder):
    args = ("x", "mask", "W") + (("memory", "memory_mask") if is_decoder else ())
    kind = "decoder" if is_decoder else "encoder"
    return HarnessCall("layer_full", args, {"is_decoder": is_decoder, **LAYER},
                       shows=f"TransformerLayer({is_decoder}, {D}, {D // DKV}, {FFN}, 0.0).forward ({kind}, no cache)",
                       **MODULES)


def layer_cached(prefix):
    return HarnessCall("layer_step_by_step", ("x", "mask", "memory", "memory_mask", "W"), {"prefix": prefix, **LAYER},
                       shows=f"a decoder TransformerLayer fed {prefix} token(s) with use_cache=True, then one token at "
                             "a time with past_kv = the returned cache: the outputs side by side, and the last cache",
                       **MODULES)


def stack_full(is_decoder):
    args = ("ids", "memory", "memory_mask", "W")
    return HarnessCall("stack_full", args, {"is_decoder": is_decoder, **SIZES},
                       shows=f"TransformerStack(config, emb_word, emb_pos, emb_ln, {is_decoder})(input_ids"
                             + (", encoder_hidden_states, encoder_padding_mask" if is_decoder else "")
                             + "): state, padding_mask, whether past_key_values is None", **MODULES)


def stack_cached(prefix):
    return HarnessCall("stack_step_by_step", ("ids", "memory", "memory_mask", "W"), {"prefix": prefix, **SIZES},
                       shows=f"a decoder TransformerStack fed input_ids[:, :{prefix}] with use_cache=True, then one "
                             "token at a time with the past_key_values it returned: the states and padding masks side "
                             "by side, and the last caches", **MODULES)


def decoding_step_at(n: int) -> dict:
    """One cached step after n tokens: 2 rows, caches [2, n, 8] per layer, a 4-token source."""
    return {"token": TokenIds((1, 1), 1), "past0": Randn(2, n, SMALL_D), "past1": Randn(2, n, SMALL_D),
            "memory": Randn(2, 4, SMALL_D), "memory_mask": PaddingMask((4, 3), 4),
            "W": StackWeights(d=SMALL_D, ffn=SMALL_FFN, positions=LONG)}


def generation_at(n: int) -> dict:
    """n tokens to generate (the length of "steps") for 4 sources of 32 encoder states."""
    return {"memory": Randn(4, 32, D, dtype=torch.float32), "memory_mask": PaddingMask((32, 30, 20, 32), 32),
            "steps": Randn(n, dtype=torch.float32), "W": StackWeights(positions=POSITIONS)}


def generate(use_cache: bool) -> HarnessCall:
    return HarnessCall("generate", ("memory", "memory_mask", "steps", "W"), {"use_cache": use_cache, **SIZES},
                       shows="greedy decoding of N tokens " + ("from the cache" if use_cache else
                                                               "running the whole prefix at every step"),
                       **MODULES)


LAYER_FEEDBACK = ("with past_kv, kv = cat(past_kv, x) along the sequence; the new token's self-attention is "
                  "self_attn(x, kv, kv) with no mask (every cached token is in its past); cross-attention and the "
                  "feed-forward are unchanged; return (x, kv) when use_cache")
STACK_FEEDBACK = ("positions continue after the cache: add past_key_values[0].size(1) when a cache is given; "
                  "layer i gets past_key_values[i] and its new cache goes back in place i")

# part I's behaviour is given in the starter: its cases count once the cached path works too
LAYER_CACHED = "TransformerLayer: token by token from the cache"
STACK_CACHED = "TransformerStack: token by token from the cache"

CASES = [
    # part I's behaviour, kept
    Value("TransformerLayer without the cache: encoder", 2, call=layer_full(False),
          inputs={"x": Randn(3, 6, D), "mask": PaddingMask((6, 4, 2), 6), "W": LayerWeights(False)},
          handout="if use_cache is not True, the behavior of the method should remain the same as in Part I",
          requires=(LAYER_CACHED,)),
    Value("TransformerLayer without the cache: decoder", 2, call=layer_full(True),
          inputs={"x": Randn(3, 5, D), "mask": PaddingMask((5, 3, 2), 5), "memory": Randn(3, 6, D),
                  "memory_mask": PaddingMask((6, 2, 5), 6), "W": LayerWeights(True)},
          handout="if use_cache is not True, the behavior of the method should remain the same as in Part I",
          requires=(LAYER_CACHED,)),

    # the layer, token by token
    Value(LAYER_CACHED, 4, call=layer_cached(prefix=1),
          inputs={"x": Randn(4, 6, D), "mask": PaddingMask((6, 4, 5, 2), 6), "memory": Randn(4, 3, D),
                  "memory_mask": PaddingMask((3, 1, 2, 3), 3), "W": LayerWeights(True)},
          handout="with use_cache, return the output at the new position and the new cache kv = [h_1, ..., h_i]",
          feedback=LAYER_FEEDBACK),
    Value("TransformerLayer: a 3-token prompt, then the cache", 2, call=layer_cached(prefix=3),
          inputs={"x": Randn(2, 7, D), "mask": PaddingMask((7, 5), 7), "memory": Randn(2, 4, D),
                  "memory_mask": PaddingMask((4, 2), 4), "W": LayerWeights(True)},
          handout="past_kv is None (the first call) or the cache of the earlier tokens", feedback=LAYER_FEEDBACK),

    # the stack
    Value("TransformerStack: decoder without the cache", 2, call=stack_full(True),
          inputs={"ids": TokenIds((6, 4, 5), 6), "memory": Randn(3, 4, D), "memory_mask": PaddingMask((4, 2, 3), 4),
                  "W": StackWeights(True)},
          handout="without use_cache the stack returns (state, padding_mask, None), as in the notebook's test",
          requires=(STACK_CACHED,)),
    Value("TransformerStack: encoder", 1, call=stack_full(False),
          inputs={"ids": TokenIds((7, 3), 7), "memory": Randn(2, 1, D), "memory_mask": PaddingMask((1, 1), 1),
                  "W": StackWeights(False)},
          handout="the encoder stack runs as before", requires=(STACK_CACHED,)),
    Value(STACK_CACHED, 4, call=stack_cached(prefix=1),
          inputs={"ids": TokenIds((6, 5, 3, 6, 2), 6), "memory": Randn(5, 3, D),
                  "memory_mask": PaddingMask((2, 1, 2, 3, 3), 3), "W": StackWeights(True)},
          handout="the stack in token-by-token mode equals teacher forcing, with positions offset by the cache",
          feedback=STACK_FEEDBACK),
    Value("TransformerStack: a 3-token prompt, then the cache", 2, call=stack_cached(prefix=3),
          inputs={"ids": TokenIds((8, 6), 8), "memory": Randn(2, 5, D), "memory_mask": PaddingMask((5, 3), 5),
                  "W": StackWeights(True)},
          handout="positions are offset by the cached length", feedback=STACK_FEEDBACK),

    # cost: one cached step must not redo the prefix
    Complexity("TransformerStack: one cached step is linear in the cached length", 3,
               call=HarnessCall("decoding_step", ("token", "past0", "past1", "memory", "memory_mask", "W"), SMALL,
                                shows="one cached decoding step of a 2-layer decoder TransformerStack after N tokens",
                                **MODULES),
               inputs_at=decoding_step_at, sizes=(32, 64, 128, 256), max_exponent=1.3, max_constant_elements=20_000,
               handout="with the cache, self-attention costs Theta(n_tgt) per step, not Theta(n_tgt^2)"),
    GpuTiming("cached decoding GPU time vs reference", 0, call=generate(True), inputs_at=generation_at,
              sizes=(8, 16, 32), repeats=5),
    GpuTiming("uncached decoding GPU time vs reference", 0, call=generate(False), inputs_at=generation_at,
              sizes=(8, 16, 32), repeats=5),

    # the course's log, checked against the submitted code
    logged("transformer_layer.2.1"),
    logged("transformer_layer.4.1"),
    logged("transformer_layer.6.1"),
    logged("transformer_layer.2.state_1"),
    logged("transformer_layer.2.state_2"),
]
