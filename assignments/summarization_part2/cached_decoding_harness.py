"""How the grader calls a student's part II code: the course's TransformerLayer and
TransformerStack built with the grader's weights, run in full or token by token from the cache,
returning plain tensors.

A support module of the sandbox: the same functions run on the student's module (in the child)
and on the reference's or a mistake's (in the parent), so both are called exactly alike. Every
function receives `modules` ({"summarization": module}) first. Rows of padded tokens are zeroed
before they are returned (what a padded row computes is meaningless; the course compares real
tokens only). Building a module happens `unrecorded()`: a complexity case measures the decoding
step, not the construction.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn

from grader.harness import HarnessError, build, load_weights, student_class, unrecorded

MODULE = "summarization"


def _real(output, padding_mask):
    """output [B, L, D] with the rows of padded tokens set to 0; anything else as it is."""
    if padding_mask is None or not isinstance(output, torch.Tensor) or output.dim() != 3 \
            or tuple(output.shape[:2]) != tuple(padding_mask.shape):
        return output
    return output.masked_fill(padding_mask.bool()[:, :, None], 0.0)


def _pair(result, what):
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise HarnessError(f"{what} with use_cache=True must return (x, kv); it returned {type(result).__name__}"
                           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return result


def _triple(result, what):
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        raise HarnessError(f"{what} must return (state, padding_mask, past_key_values); it returned "
                           f"{type(result).__name__}" + (f" of length {len(result)}" if isinstance(result, (tuple, list))
                                                          else ""))
    return result


def config(d_model, d_kv, d_ff, n_layers, n_positions, vocab_size):
    """The notebook's config: an HF PretrainedConfig built from keyword arguments (a namespace
    of them here; the student's class reads only attributes)."""
    return SimpleNamespace(is_encoder_decoder=True, use_cache=True, decoder_start_token_id=1, vocab_size=vocab_size,
                           pad_token_id=0, eos_token_id=1, n_positions=n_positions, num_encoder_layers=n_layers,
                           num_decoder_layers=n_layers, d_model=d_model, d_ff=d_ff, d_kv=d_kv, dropout_rate=0.0)


def stack(modules, weights, dtype, is_decoder, device=None, **sizes):
    """TransformerStack(config, emb_word, emb_pos, emb_ln, is_decoder) with the grader's weights:
    the embeddings are torch's own modules (the notebook's Transformer makes them), given the
    weights "emb_word.weight", "emb_pos.weight", "emb_ln.weight" / ".bias"; the layers' weights
    are loaded by the starter's names ("layers.0.self_attn.q_proj.weight", ...)."""
    with unrecorded():
        cfg = config(**sizes)
        emb_word = nn.Embedding(cfg.vocab_size, cfg.d_model)
        emb_pos = nn.Embedding(cfg.n_positions, cfg.d_model)
        emb_ln = nn.LayerNorm(cfg.d_model)
        cls = student_class(modules, MODULE, "TransformerStack")
        model = cls(cfg, emb_word, emb_pos, emb_ln, is_decoder).to(dtype)
        load_weights(model, weights, "TransformerStack")
        model.train(False)
        return model.to(device) if device is not None else model


def layer_full(modules, x, padding_mask, weights, encoder_out=None, encoder_padding_mask=None, *, is_decoder, d_model,
               n_heads, d_ffn):
    """TransformerLayer(is_decoder, ...).forward(...) without the cache (part I's behaviour), real
    rows only."""
    with unrecorded():
        layer = build(student_class(modules, MODULE, "TransformerLayer"), is_decoder, d_model, n_heads, d_ffn, 0.0,
                      weights=weights, train=False, dtype=x.dtype, what="TransformerLayer")
    if is_decoder:
        return _real(layer(x, padding_mask, encoder_out, encoder_padding_mask), padding_mask)
    return _real(layer(x, padding_mask), padding_mask)


def layer_step_by_step(modules, x, padding_mask, memory, memory_mask, weights, *, prefix, d_model, n_heads, d_ffn):
    """A decoder TransformerLayer fed x[:, :prefix] with use_cache=True and no past_kv, then one
    token at a time with past_kv = the cache it returned (padding_mask None, as the notebook's
    test passes it): (outputs [B, L, D], real rows only; the last cache [B, L, D], real rows only)."""
    with unrecorded():
        layer = build(student_class(modules, MODULE, "TransformerLayer"), True, d_model, n_heads, d_ffn, 0.0,
                      weights=weights, train=False, dtype=x.dtype, what="TransformerLayer")
    what = "TransformerLayer.forward"
    out, kv = _pair(layer(x[:, :prefix], padding_mask[:, :prefix], memory, memory_mask, use_cache=True,
                          past_kv=None), what)
    outputs = [out]
    for t in range(prefix, x.size(1)):
        out, kv = _pair(layer(x[:, t:t + 1], None, memory, memory_mask, use_cache=True, past_kv=kv), what)
        outputs.append(out)
    return _real(torch.cat(outputs, dim=1), padding_mask), _real(kv, padding_mask)


def stack_full(modules, ids, memory, memory_mask, weights, *, is_decoder, **sizes):
    """TransformerStack(...)(ids, memory, memory_mask) without the cache: (state, real rows only;
    the padding mask as bool; whether the third value is None)."""
    model = stack(modules, weights, torch.float64, is_decoder, **sizes)
    state, mask, past = _triple(model(ids, memory, memory_mask) if is_decoder else model(ids), "TransformerStack.forward")
    padding = ids.eq(0)
    return _real(state, padding), torch.as_tensor(mask).bool(), torch.tensor(past is None)


def stack_step_by_step(modules, ids, memory, memory_mask, weights, *, prefix, **sizes):
    """The decoder TransformerStack fed ids[:, :prefix] with use_cache=True, then one token at a
    time with the caches it returned (a fresh list each step, as HF's generate passes them):
    (states [B, L, D] real rows only, the padding masks side by side as bool, the last caches,
    real rows only)."""
    model = stack(modules, weights, torch.float64, True, **sizes)
    what = "TransformerStack.forward(..., use_cache=True)"
    state, mask, past = _triple(model(ids[:, :prefix], memory, memory_mask, use_cache=True, past_key_values=None),
                                what)
    states, masks = [state], [torch.as_tensor(mask).bool()]
    for t in range(prefix, ids.size(1)):
        if not isinstance(past, (list, tuple)):
            raise HarnessError(f"{what} returned {type(past).__name__} as past_key_values, not a list per layer")
        state, mask, past = _triple(model(ids[:, t:t + 1], memory, memory_mask, use_cache=True,
                                          past_key_values=list(past)), what)
        states.append(state)
        masks.append(torch.as_tensor(mask).bool())
    padding = ids.eq(0)
    if not isinstance(past, (list, tuple)):
        raise HarnessError(f"{what} returned {type(past).__name__} as past_key_values, not a list per layer")
    return _real(torch.cat(states, dim=1), padding), torch.cat(masks, dim=1), [_real(kv, padding) for kv in past]


def decoding_step(modules, token, past0, past1, memory, memory_mask, weights, **sizes):
    """One cached decoding step of a 2-layer decoder stack after N tokens: the new token [B, 1]
    with caches [B, N, D] per layer -> (state [B, 1, D], the new caches [B, N + 1, D])."""
    model = stack(modules, weights, past0.dtype, True, **sizes)
    state, _, past = _triple(model(token, memory, memory_mask, use_cache=True, past_key_values=[past0, past1]),
                             "TransformerStack.forward(..., use_cache=True)")
    return state, list(past) if isinstance(past, (list, tuple)) else past


def generate(modules, memory, memory_mask, steps, weights, *, use_cache, **sizes):
    """Greedy decoding of len(steps) tokens with a decoder stack and a tied output layer, from
    the cache or by running the whole prefix again at every step: [B, 1 + len(steps)] ids. For
    timing (a GPU case sizes its inputs, so the number of steps comes as an input's length)."""
    model = stack(modules, weights, memory.dtype, True, memory.device, **sizes)
    B = memory.size(0)
    ids = torch.ones(B, 1, dtype=torch.long, device=memory.device)       # eos starts decoding
    past = None
    with torch.no_grad():
        for _ in range(steps.numel()):
            if use_cache:
                state, _, past = model(ids[:, -1:], memory, memory_mask, use_cache=True, past_key_values=past)
                past = list(past)
            else:
                state, _, _ = model(ids, memory, memory_mask)
            logits = state[:, -1] @ model.emb_word.weight.T
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True).clamp(min=2)], dim=1)   # never pad nor eos
    return ids


def notebook_log(modules):
    """The entries part II's notebook writes to submission_logs.json, its logging test cells
    replayed with this code playing the student's (notebook_logs.py, shared with part I)."""
    import notebook_logs

    return notebook_logs.part2_log_entries(modules[MODULE])
