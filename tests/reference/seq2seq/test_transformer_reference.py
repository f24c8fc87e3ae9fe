"""Independent checks of the summarization Transformer reference (reference/seq2seq/).

Oracles, none of which share code with the reference:
  * `torch.nn.functional.scaled_dot_product_attention` (its boolean attn_mask is True where
    attention IS allowed), `nn.MultiheadAttention`, `nn.TransformerEncoderLayer` and
    `nn.TransformerDecoderLayer` (post-LN, ReLU, dropout 0, batch_first; their boolean masks
    are True where attention is NOT allowed), with weights copied by this file's own helpers;
  * a whole encoder-decoder assembled from those torch.nn layers, with the decoder input and
    the loss written out here;
  * the course notebooks' own test cells (CS182 Fall 2023, Berkeley-CS182/cs182fa23_public,
    q_coding_summarize_part_1/q_summarize_part_1.ipynb and
    q_coding_summarize_part_2/q_summarization_part2.ipynb), replayed seed by seed in float32:
    their literal expected numbers (only `test_scaled_dot_product_attention` has any; the
    published notebooks carry no outputs, so no logged value is printed anywhere) and their
    asserts (torch.allclose rtol 1e-3 in part I, `vector_all_close` rtol 1e-3 in part II).

Everything else runs in float64 on small sizes. Part II's vocabulary and ids are the t5-small
tokenizer's numbers, 32100 / pad 0 / eos 1, used as numbers (no tokenizer is loaded).
"""
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from reference.seq2seq import transformer as reference_code
from reference.seq2seq.transformer import (
    MultiheadAttention,
    Seq2SeqTransformer,
    T5_EOS_ID,
    T5_PAD_ID,
    T5_VOCAB_SIZE,
    Transformer,
    TransformerConfig,
    TransformerLayer,
    greedy_generate,
    scaled_dot_product_attention,
)

F64 = torch.float64


def _notebook_logs():
    """The notebooks' logging cells, replayed (the summarization assignment's notebook_logs.py,
    which grading runs with the reference and, in the sandbox, with the submitted code)."""
    path = Path(__file__).resolve().parents[3] / "assignments" / "summarization" / "notebook_logs.py"
    spec = importlib.util.spec_from_file_location("summarization_notebook_logs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOTEBOOK_LOGS = _notebook_logs()


def part1_log_entries():
    return NOTEBOOK_LOGS.part1_log_entries(reference_code)


def part2_log_entries():
    return NOTEBOOK_LOGS.part2_log_entries(reference_code)


def notebook_stack():
    return NOTEBOOK_LOGS.notebook_stack(reference_code)


# ----------------------------------------------------------------------------- helpers

def right_padding(lengths, L):
    """[B, L] uint8, 1 after each row's length (the course's mask convention)."""
    return (torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None]).byte()


def future_bool(Lq, Lk):
    """True where key j > query i: the NOT-allowed convention of nn.MultiheadAttention."""
    return torch.ones(Lq, Lk, dtype=torch.bool).triu(1)


def copy_attention_from_torch(ours, mha):
    q_w, k_w, v_w = mha.in_proj_weight.detach().chunk(3, dim=0)
    q_b, k_b, v_b = mha.in_proj_bias.detach().chunk(3, dim=0)
    with torch.no_grad():
        for proj, w, b in ((ours.q_proj, q_w, q_b), (ours.k_proj, k_w, k_b),
                           (ours.v_proj, v_w, v_b)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.o_proj.weight.copy_(mha.out_proj.weight)
        ours.o_proj.bias.copy_(mha.out_proj.bias)


def copy_weight_and_bias(ours, theirs):
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


def copy_layer_from_torch(ours, layer):
    """nn.TransformerEncoderLayer / DecoderLayer -> TransformerLayer, LayerNorms included."""
    copy_attention_from_torch(ours.self_attn, layer.self_attn)
    copy_weight_and_bias(ours.self_attn_ln, layer.norm1)
    if isinstance(layer, nn.TransformerDecoderLayer):
        copy_attention_from_torch(ours.cross_attn, layer.multihead_attn)
        copy_weight_and_bias(ours.cross_attn_ln, layer.norm2)
        copy_weight_and_bias(ours.ffn_ln, layer.norm3)
    else:
        copy_weight_and_bias(ours.ffn_ln, layer.norm2)
    for mine, theirs in ((ours.fc1, layer.linear1), (ours.fc2, layer.linear2)):
        copy_weight_and_bias(mine, theirs)


def randomize_(module, std=0.2):
    """Every parameter random, LayerNorm gains around 1, so that no weight is left at a value
    (0, 1) that would hide a swapped or skipped tensor."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1 + std * torch.randn_like(p))
            else:
                p.normal_(0.0, std)
    return module


def vector_all_close(x, y, rtol=1e-3):
    """The part II notebook's check: per-vector L2 error <= rtol * (|x| + |y|)."""
    return bool(((x - y).norm(dim=-1) <= rtol * (x.norm(dim=-1) + y.norm(dim=-1))).all())


def assert_close(actual, expected, tol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def logs():
    """Both replays, run once, and whether they left the caller's generator as it was."""
    state = torch.get_rng_state()
    part1, part2 = part1_log_entries(), part2_log_entries()
    untouched = torch.equal(torch.get_rng_state(), state)
    return {"part1": part1, "part2": part2, "rng_untouched": untouched}


def notebook_torch_layers():
    """The notebooks' seeded torch layers: seed 750 encoder, seed 950 decoder, weights
    normal(0, 0.05) in the cells' order, each followed by the student's layer built and
    loaded (its construction draws from the generator too, as in the cells)."""
    torch.manual_seed(750)
    enc0 = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
    for t in (enc0.self_attn.in_proj_weight, enc0.self_attn.in_proj_bias,
              enc0.self_attn.out_proj.weight, enc0.self_attn.out_proj.bias,
              enc0.linear1.weight, enc0.linear1.bias, enc0.linear2.weight, enc0.linear2.bias):
        nn.init.normal_(t, mean=0.0, std=0.05)
    enc1 = TransformerLayer(False, 128, 4, 512, 0.0)
    copy_layer_from_torch(enc1, enc0)

    torch.manual_seed(950)
    dec0 = nn.TransformerDecoderLayer(128, 4, dim_feedforward=512, dropout=0.0, batch_first=True)
    for attn in (dec0.self_attn, dec0.multihead_attn):
        for t in (attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight, attn.out_proj.bias):
            nn.init.normal_(t, mean=0.0, std=0.05)
    for t in (dec0.linear1.weight, dec0.linear1.bias, dec0.linear2.weight, dec0.linear2.bias):
        nn.init.normal_(t, mean=0.0, std=0.05)
    dec1 = TransformerLayer(True, 128, 4, 512, 0.0)
    copy_layer_from_torch(dec1, dec0)
    return enc0, enc1, dec0, dec1


# ------------------------------------------------------- (a) scaled dot-product attention

def test_sdpa_matches_torch_with_padding_and_causal_masks():
    torch.manual_seed(0)
    n, L, d = 4, 6, 5
    q, k, v = (torch.randn(n, L, d, dtype=F64) for _ in range(3))
    # Row 3 keeps one key only: every query of it sees exactly one key.
    pad = right_padding([6, 4, 2, 1], L)
    allowed_pad = ~pad.bool()[:, None, :]                       # [n, 1, Lk], True = attend
    allowed_causal = ~future_bool(L, L)                         # [Lq, Lk]

    cases = [
        (dict(), None),
        (dict(key_padding_mask=pad), allowed_pad),
        (dict(causal=True), allowed_causal),
        (dict(key_padding_mask=pad, causal=True), allowed_pad & allowed_causal),
    ]
    for kwargs, allowed in cases:
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        assert_close(scaled_dot_product_attention(q, k, v, **kwargs), expected)

    # The single-key row returns that key's value for every query.
    out = scaled_dot_product_attention(q, k, v, key_padding_mask=pad)
    assert_close(out[3], v[3, 0].expand(L, d))
    # Under the causal mask, query 0 sees key 0 only.
    out = scaled_dot_product_attention(q, k, v, causal=True)
    assert_close(out[:, 0], v[:, 0])


def test_sdpa_cross_lengths_and_mask_dtypes():
    torch.manual_seed(1)
    q = torch.randn(3, 4, 8, dtype=F64)
    k, v = torch.randn(3, 7, 8, dtype=F64), torch.randn(3, 7, 8, dtype=F64)
    pad = right_padding([7, 3, 5], 7)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad.bool()[:, None, :])
    for mask in (pad, pad.bool(), pad.long()):
        assert_close(scaled_dot_product_attention(q, k, v, key_padding_mask=mask), expected)
    # Causal with Lq != Lk is top-left aligned: query i sees keys 0..i.
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(4, 7).tril().bool())
    assert_close(scaled_dot_product_attention(q, k, v, causal=True), expected)


def test_sdpa_padded_keys_have_no_influence_and_empty_rows_are_nan():
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 5, 4, dtype=F64) for _ in range(3))
    pad = right_padding([3, 5], 5)
    out = scaled_dot_product_attention(q, k, v, key_padding_mask=pad)
    k2, v2 = k.clone(), v.clone()
    k2[0, 3:], v2[0, 3:] = 1e3, -1e3
    assert_close(scaled_dot_product_attention(q, k2, v2, key_padding_mask=pad), out, tol=0)
    # A query with no visible key: NaN, as in the course's solution and nn.MultiheadAttention.
    all_pad = torch.ones(2, 5, dtype=torch.uint8)
    assert scaled_dot_product_attention(q, k, v, key_padding_mask=all_pad).isnan().all()


def test_sdpa_softmax_precision_follows_input():
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 3, 4, dtype=F64) for _ in range(3))
    assert scaled_dot_product_attention(q, k, v).dtype == F64
    half = scaled_dot_product_attention(q.half(), k.half(), v.half())
    assert half.dtype == torch.float16
    assert_close(half.double(), scaled_dot_product_attention(q, k, v), tol=5e-3)


# ---------------------------------------------------------- (b) multi-head attention

def test_mha_matches_torch_with_padding_and_causal():
    torch.manual_seed(10)
    D, H = 16, 4
    mha0 = randomize_(nn.MultiheadAttention(D, H, batch_first=True, dtype=F64))
    mha1 = MultiheadAttention(D, H).double()
    copy_attention_from_torch(mha1, mha0)

    B, L = 3, 6
    q, k, v = (torch.randn(B, L, D, dtype=F64) for _ in range(3))
    pad = right_padding([6, 4, 1], L)
    assert_close(mha1(q, k, v), mha0(q, k, v)[0])
    assert_close(mha1(q, k, v, key_padding_mask=pad),
                 mha0(q, k, v, key_padding_mask=pad.bool())[0])
    assert_close(mha1(q, k, v, key_padding_mask=pad, causal=True),
                 mha0(q, k, v, key_padding_mask=pad.bool(), attn_mask=future_bool(L, L))[0])

    # Cross-attention: 5 queries over 3 keys of another sequence.
    q2, kv2 = torch.randn(B, 5, D, dtype=F64), torch.randn(B, 3, D, dtype=F64)
    pad2 = right_padding([3, 2, 1], 3)
    assert_close(mha1(q2, kv2, kv2, key_padding_mask=pad2),
                 mha0(q2, kv2, kv2, key_padding_mask=pad2.bool())[0])


def test_mha_heads_are_contiguous_channel_blocks():
    """Zeroing head h's slice of o_proj's input removes exactly the channels [h*Dh, (h+1)*Dh)
    of the concatenated heads: computed here per head with F.scaled_dot_product_attention."""
    torch.manual_seed(11)
    D, H, Dh = 12, 3, 4
    mha = randomize_(MultiheadAttention(D, H).double())
    x = torch.randn(2, 5, D, dtype=F64)
    q, k, v = mha.q_proj(x), mha.k_proj(x), mha.v_proj(x)
    block = [slice(h * Dh, (h + 1) * Dh) for h in range(H)]
    heads = [F.scaled_dot_product_attention(q[..., b], k[..., b], v[..., b]) for b in block]
    assert_close(mha(x, x, x), mha.o_proj(torch.cat(heads, dim=-1)))


# ------------------------------------------------------------ (c) transformer layers

def test_encoder_layer_matches_torch_on_real_tokens():
    torch.manual_seed(20)
    D, H, FF = 16, 4, 32
    layer0 = randomize_(nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                                   dtype=F64))
    layer1 = TransformerLayer(False, D, H, FF, 0.3).double().eval()  # eval: dropout off
    copy_layer_from_torch(layer1, layer0)
    assert not hasattr(layer1, "cross_attn")

    lengths = [5, 3, 4, 1]
    x = torch.randn(4, 5, D, dtype=F64)
    pad = right_padding(lengths, 5)
    y0 = layer0(x, src_key_padding_mask=pad.bool())
    y1 = layer1(x, pad)
    for i, l in enumerate(lengths):
        assert_close(y1[i, :l], y0[i, :l])


def test_decoder_layer_matches_torch_on_real_tokens():
    torch.manual_seed(21)
    D, H, FF = 16, 4, 32
    layer0 = randomize_(nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                                   dtype=F64))
    layer1 = TransformerLayer(True, D, H, FF, 0.3).double().eval()
    copy_layer_from_torch(layer1, layer0)

    lengths, mem_lengths = [5, 3, 4, 1], [3, 3, 1, 2]
    x, e = torch.randn(4, 5, D, dtype=F64), torch.randn(4, 3, D, dtype=F64)
    pad, e_pad = right_padding(lengths, 5), right_padding(mem_lengths, 3)
    y0 = layer0(x, e, tgt_mask=future_bool(5, 5), tgt_key_padding_mask=pad.bool(),
                memory_key_padding_mask=e_pad.bool())
    y1 = layer1(x, pad, e, e_pad)
    for i, l in enumerate(lengths):
        assert_close(y1[i, :l], y0[i, :l])


def test_layer_dropout_is_residual_dropout_only():
    """In training mode the three dropouts act on the sublayer outputs: with p = 1 every
    sublayer is dropped and the layer is LayerNorm(LayerNorm(LayerNorm(x)))."""
    torch.manual_seed(22)
    layer = randomize_(TransformerLayer(True, 8, 2, 16, 1.0).double()).train()
    x, e = torch.randn(2, 3, 8, dtype=F64), torch.randn(2, 4, 8, dtype=F64)
    expected = layer.ffn_ln(layer.cross_attn_ln(layer.self_attn_ln(x)))
    assert_close(layer(x, None, e, None), expected)


# ----------------------------------------- (d) the notebooks' literal numbers and asserts

def test_notebook_scaled_dot_product_attention_literals():
    """`test_scaled_dot_product_attention` of part I, its four literal expectations."""
    q1 = torch.tensor([[1, 0, 0], [0.5, 0.5, 0]]).view(1, 2, 3).float()
    k1 = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1]]).view(1, 3, 3).float()
    v1 = torch.tensor([[3, 0, 0], [0, 5, 0], [0, 0, 7]]).view(1, 3, 3).float()
    o1 = scaled_dot_product_attention(q1, k1, v1)
    assert list(o1.shape) == [1, 2, 3]
    expected1 = torch.tensor([1.413249135017395, 1.3222922086715698, 1.8512091636657715,
                              1.0912044048309326, 1.818674087524414])

    torch.manual_seed(100)
    q2, k2, v2 = torch.randn(3, 5, 7), torch.randn(3, 11, 7), torch.randn(3, 11, 7)
    o2 = scaled_dot_product_attention(q2, k2, v2)
    assert list(o2.shape) == [3, 5, 7]
    expected2 = torch.tensor([-0.40304261445999146, -0.2931785583496094, 0.20563912391662598,
                              0.08719107508659363, 0.08274038136005402])

    o4 = scaled_dot_product_attention(q1, k1, v1, key_padding_mask=torch.tensor([[0, 0, 1]]).byte())
    assert list(o4.shape) == [1, 2, 3]
    expected4 = torch.tensor([1.921372413635254, 1.7977124452590942, 0.0, 1.5, 2.5])

    torch.manual_seed(210)
    q5, k5, v5 = torch.randn(2, 4, 3), torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    o5 = scaled_dot_product_attention(q5, k5, v5, causal=True)
    assert list(o5.shape) == [2, 4, 3]
    expected5 = torch.tensor([0.9079901576042175, -0.573272705078125, -1.1765587329864502,
                              0.7771514058113098, -0.3235766291618347])

    for got, expected in ((o1.view(-1)[:5], expected1), (o2.view(-1)[6:11], expected2),
                          (o4.view(-1)[:5], expected4), (o5.view(-1)[2:7], expected5)):
        assert torch.allclose(got, expected, rtol=1e-3)            # the course's check
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)  # and far tighter


def test_notebook_multihead_attention_asserts():
    """`test_multihead_attention` of part I: seed 350 weights, seeds 400 and 600 inputs."""
    torch.manual_seed(350)
    mha0 = nn.MultiheadAttention(embed_dim=128, num_heads=4, batch_first=True)
    for t in (mha0.in_proj_weight, mha0.in_proj_bias, mha0.out_proj.weight, mha0.out_proj.bias):
        nn.init.normal_(t, mean=0.0, std=0.05)
    mha1 = MultiheadAttention(128, 4)
    copy_attention_from_torch(mha1, mha0)

    torch.manual_seed(400)
    q, k, v = torch.randn(4, 6, 128), torch.randn(4, 6, 128), torch.randn(4, 6, 128)
    assert torch.allclose(mha0(q, k, v)[0], mha1(q, k, v), rtol=1e-3)

    torch.manual_seed(600)
    q, k, v = torch.randn(4, 6, 128), torch.randn(4, 6, 128), torch.randn(4, 6, 128)
    pad = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0],
                        [0, 0, 0, 0, 0, 1]]).byte()
    o0 = mha0(q, k, v, key_padding_mask=pad.bool(), attn_mask=future_bool(6, 6))[0]
    o1 = mha1(q, k, v, key_padding_mask=pad, causal=True)
    assert torch.allclose(o0, o1, rtol=1e-3)  # the cell checks row 0; every row agrees


def test_notebook_transformer_layer_asserts():
    """`test_transformer_layer` (part I) / `test_transformer_layer_with_cache` (part II):
    seeds 800 and 1000, compared on the cells' real positions with both checks."""
    enc0, enc1, dec0, dec1 = notebook_torch_layers()
    torch.manual_seed(800)
    x = torch.randn(4, 5, 128)
    pad = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 1, 1, 1]]).byte()
    y0, y1 = enc0(x, src_key_padding_mask=pad.bool()), enc1(x, pad)
    for i, l in enumerate([5, 3, 4, 2]):
        assert torch.allclose(y0[i, :l], y1[i, :l], rtol=1e-3)
        assert vector_all_close(y0[i, :l], y1[i, :l])

    torch.manual_seed(1000)
    x, e = torch.randn(4, 5, 128), torch.randn(4, 3, 128)
    e_pad = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]).byte()
    y0 = dec0(x, e, tgt_mask=future_bool(5, 5), tgt_key_padding_mask=pad.bool(),
              memory_key_padding_mask=e_pad.bool())
    y1 = dec1(x, pad, e, e_pad)
    for i, l in enumerate([5, 3, 4, 2]):
        assert torch.allclose(y0[i, :l], y1[i, :l], rtol=1e-3)
        assert vector_all_close(y0[i, :l], y1[i, :l])


def test_notebook_cached_layer_assert():
    """Part II, seed 1200: token by token with past_kv = x[:, :i] equals torch's full pass on
    each row's real tokens, and the last cache is the layer's input."""
    _, _, dec0, dec1 = notebook_torch_layers()
    torch.manual_seed(1200)
    x, e = torch.randn(5, 6, 128), torch.randn(5, 3, 128)
    x_len = [4, 5, 3, 6, 2]
    pad = right_padding(x_len, 6)
    e_pad = torch.tensor([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]]).byte()
    y0 = dec0(x, e, tgt_mask=future_bool(6, 6), tgt_key_padding_mask=pad.bool(),
              memory_key_padding_mask=e_pad.bool())
    steps = []
    for i in range(6):
        y, kv = dec1(x[:, i:i + 1], None, e, e_pad, use_cache=True,
                     past_kv=x[:, :i] if i > 0 else None)
        steps.append(y)
    y1 = torch.cat(steps, dim=1)
    for i, l in enumerate(x_len):
        assert vector_all_close(y1[i, :l], y0[i, :l])
        assert vector_all_close(kv[i, :l], x[i, :l])
    assert torch.equal(kv, x)


def run_stack_both_ways(stack, input_ids, enc, enc_pad):
    full = stack(input_ids, enc, enc_pad)
    states, masks, cache = [], [], None
    for i in range(input_ids.size(1)):
        state, mask, cache = stack(input_ids[:, i:i + 1], enc, enc_pad, use_cache=True,
                                   past_key_values=cache)
        states.append(state)
        masks.append(mask)
    return full, (torch.cat(states, dim=1), torch.cat(masks, dim=1), cache)


def test_notebook_stack_asserts_and_logged_values(logs):
    config, stack = notebook_stack()
    assert len(stack.layers) == 2 and stack.layers[0].self_attn.n_heads == 4  # 128 // d_kv 32
    input_ids = torch.randint(10, 100, (5, 6))
    pad = right_padding([4, 5, 3, 6, 2], 6)
    input_ids[pad.bool()] = config.pad_token_id
    enc = torch.randn(5, 3, 128)
    enc_pad = torch.tensor([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]]).byte()
    (state_1, pad_1, kv_1), (state_2, pad_2, kv_2) = run_stack_both_ways(
        stack, input_ids, enc, enc_pad)
    assert list(state_1.shape) == [5, 6, 128] and kv_1 is None
    assert (pad_1 == pad).all() and (pad_2 == pad).all()
    for i, l in enumerate([4, 5, 3, 6, 2]):
        assert vector_all_close(state_1[i, :l], state_2[i, :l])
    assert len(kv_2) == 2 and list(kv_2[0].shape) == [5, 6, 128]

    # The logged second batch.
    input_ids = torch.randint(10, 100, (3, 4))
    input_ids[right_padding([4, 4, 3], 4).bool()] = config.pad_token_id
    enc = torch.randn(3, 5, 128)
    enc_pad = right_padding([4, 3, 5], 5)
    (state_1, _, _), (state_2, _, _) = run_stack_both_ways(stack, input_ids, enc, enc_pad)
    logged = logs["part2"]
    for name, state in (("state_1", state_1), ("state_2", state_2)):
        assert logged[f"transformer_layer.2.{name}.shape"] == [3, 4, 128]
        assert logged[f"transformer_layer.2.{name}.value"] == state.view(-1)[380:385].tolist()


# ---------------------------------------------------------- (e) cached decoding

def small_config(**overrides):
    fields = dict(vocab_size=29, pad_token_id=0, eos_token_id=1, n_positions=32,
                  num_encoder_layers=2, num_decoder_layers=2, d_model=16, d_ff=32, d_kv=4,
                  dropout_rate=0.1)
    fields.update(overrides)
    return TransformerConfig(**fields)


def test_stack_cache_equals_full_pass_on_padded_batch():
    torch.manual_seed(30)
    model = randomize_(Seq2SeqTransformer(small_config()).double()).eval()
    ids = torch.randint(2, 29, (4, 7))
    lengths = [7, 4, 1, 5]
    ids[right_padding(lengths, 7).bool()] = 0
    enc_ids = torch.randint(2, 29, (4, 6))
    enc_ids[right_padding([6, 2, 4, 5], 6).bool()] = 0
    enc, enc_pad, _ = model.encoder(enc_ids)

    (full, full_pad, _), (cached, cached_pad, cache) = run_stack_both_ways(
        model.decoder, ids, enc, enc_pad)
    assert torch.equal(full_pad, cached_pad)
    for i, l in enumerate(lengths):
        assert_close(cached[i, :l], full[i, :l])
    # Layer 0 caches its input, the embedded tokens at their full-pass positions; layer 1
    # caches layer 0's output, which is the full pass's on real tokens.
    embedded = model.emb_ln(model.emb_word(ids) + model.emb_pos(torch.arange(7)))
    assert_close(cache[0], embedded)
    layer0_out = model.decoder.layers[0](embedded, ids.eq(0), enc, enc_pad)
    for i, l in enumerate(lengths):
        assert_close(cache[1][i, :l], layer0_out[i, :l])

    # The same through the model: logits step by step equal teacher forcing.
    logits_full = model(encoder_outputs=(enc, enc_pad, None), decoder_input_ids=ids).logits
    cache, steps = None, []
    for i in range(7):
        out = model(encoder_outputs=(enc, enc_pad, None), decoder_input_ids=ids[:, i:i + 1],
                    use_cache=True, past_key_values=cache)
        cache = out.past_key_values
        steps.append(out.logits)
    logits_cached = torch.cat(steps, dim=1)
    for i, l in enumerate(lengths):
        assert_close(logits_cached[i, :l], logits_full[i, :l])


def test_pad_token_mid_sequence_is_masked_only_without_cache():
    """The course derives the decoder's padding mask from pad_id: a pad token inside a prefix
    is invisible to later tokens in a full pass but stays in the cache. Documented limit of
    the cached path (a trained model never emits pad)."""
    torch.manual_seed(31)
    model = randomize_(Seq2SeqTransformer(small_config()).double()).eval()
    enc, enc_pad, _ = model.encoder(torch.randint(2, 29, (1, 5)))
    ids = torch.tensor([[1, 7, 0, 9]])
    (full, _, _), (cached, _, _) = run_stack_both_ways(model.decoder, ids, enc, enc_pad)
    assert_close(cached[:, :2], full[:, :2])  # before the pad: the same
    assert (cached[0, 3] - full[0, 3]).abs().max() > 1e-3  # after it: the pad is seen or not


def generation_model():
    """A small random model whose greedy outputs vary by row and end at different steps:
    weights large enough that sublayers outweigh the residual copy of the input token,
    pad never predicted, eos favoured a little."""
    torch.manual_seed(5)
    model = Seq2SeqTransformer(small_config(vocab_size=13, n_positions=64, d_model=32, d_ff=64,
                                            d_kv=8)).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "_ln" not in name:
                p.normal_(0, 0.5 if p.dim() > 1 else 0.1)
        model.emb_word.weight.normal_(0, 0.3)
        model.lm_head.bias[0] = -30.0
        model.lm_head.bias[1] += 3.0
    src = torch.randint(2, 13, (4, 7))
    lengths = [7, 5, 3, 6]
    src[right_padding(lengths, 7).bool()] = 0
    return model, src, lengths


def test_greedy_generation_with_and_without_cache_agree():
    model, src, lengths = generation_model()
    with_cache = greedy_generate(model, src, 12)
    without = greedy_generate(model, src, 12, use_cache=False)
    assert torch.equal(with_cache, without)

    eos, pad = 1, 0
    assert (with_cache[:, 0] == eos).all()
    finished_at = [row.tolist().index(eos, 1) if eos in row[1:] else None for row in with_cache]
    # The case is informative: some rows stop early, one runs to the limit with varied tokens.
    assert any(t is not None and t < with_cache.size(1) - 1 for t in finished_at)
    assert any(t is None for t in finished_at)
    assert any(len(set(row[1:].tolist())) > 2 for row in with_cache)
    for row, t in zip(with_cache, finished_at):
        if t is not None:
            assert (row[t + 1:] == pad).all()

    # Brute force: argmax of the teacher-forced logits of the prefix, one token at a time.
    prefix = torch.full((src.size(0), 1), eos)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    with torch.no_grad():
        for _ in range(with_cache.size(1) - 1):
            nxt = model(input_ids=src, decoder_input_ids=prefix).logits[:, -1].argmax(-1)
            nxt[done] = pad
            done |= nxt == eos
            prefix = torch.cat([prefix, nxt[:, None]], dim=1)
    assert torch.equal(prefix, with_cache)

    # Padding in the batch changes nothing: each row alone, unpadded, decodes the same.
    for i, l in enumerate(lengths):
        alone = greedy_generate(model, src[i:i + 1, :l], 12)
        n = alone.size(1)
        assert torch.equal(alone[0], with_cache[i, :n])
        assert (with_cache[i, n:] == pad).all()


# ------------------------------------------------ (f) the whole model against torch.nn

def torch_nn_layers_for(model, D, H, FF):
    """Random torch.nn encoder and decoder layers, their weights loaded into `model`'s."""
    enc_layers, dec_layers = [], []
    for ours, layers, cls in ((model.encoder_layers, enc_layers, nn.TransformerEncoderLayer),
                              (model.decoder_layers, dec_layers, nn.TransformerDecoderLayer)):
        for mine in ours:
            theirs = randomize_(cls(D, H, FF, dropout=0.0, batch_first=True, dtype=F64))
            copy_layer_from_torch(mine, theirs)
            layers.append(theirs)
    return enc_layers, dec_layers


def torch_nn_loss(model, enc_layers, dec_layers, input_ids, labels, pad, eos):
    B, S = input_ids.shape
    T = labels.size(1)
    src_pad = input_ids == pad
    h = model.emb_ln(model.emb_word(input_ids) + model.emb_pos(torch.arange(S)))
    for layer in enc_layers:
        h = layer(h, src_key_padding_mask=src_pad)
    dec_in = torch.cat([torch.full((B, 1), eos), labels[:, :-1]], dim=1)
    dec_in = torch.where(dec_in == -100, torch.full_like(dec_in, pad), dec_in)
    g = model.emb_ln(model.emb_word(dec_in) + model.emb_pos(torch.arange(T)))
    for layer in dec_layers:
        g = layer(g, h, tgt_mask=future_bool(T, T), tgt_key_padding_mask=dec_in == pad,
                  memory_key_padding_mask=src_pad)
    logits = g @ model.emb_word.weight.T + model.lm_head.bias
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                           ignore_index=-100), logits


def part1_model_and_batch():
    torch.manual_seed(40)
    V, D, H, FF = 37, 16, 4, 32
    model = Transformer(V, 0, 1, max_len=16, n_layers=2, d_model=D, n_heads=H, d_ffn=FF,
                        p_drop=0.0).double()
    randomize_(model)
    input_ids = torch.randint(2, V, (3, 9))
    input_ids[right_padding([9, 6, 3], 9).bool()] = 0
    labels = torch.randint(2, V, (3, 7))
    for i, l in enumerate([7, 4, 2]):  # eos last, then HF's -100 label padding
        labels[i, l - 1] = 1
        labels[i, l:] = -100
    return model, input_ids, labels, (D, H, FF)


def test_transformer_loss_matches_torch_nn_assembly():
    model, input_ids, labels, (D, H, FF) = part1_model_and_batch()
    assert model.lm_head.weight is model.emb_word.weight
    enc_layers, dec_layers = torch_nn_layers_for(model, D, H, FF)
    expected_loss, expected_logits = torch_nn_loss(model, enc_layers, dec_layers, input_ids,
                                                   labels, pad=0, eos=1)
    out = model(input_ids, None, labels)
    assert_close(out.loss, expected_loss)
    assert_close(out.logits, expected_logits)
    assert out.logits.shape == (3, 7, 37) and out[0] is out.loss
    # attention_mask is ignored: padding comes from pad_id.
    assert_close(model(input_ids, torch.zeros_like(input_ids), labels).loss, out.loss, tol=0)


def test_make_positions_and_embedding_conventions():
    model, input_ids, labels, _ = part1_model_and_batch()
    pos = model.make_positions(input_ids, input_ids.eq(0))
    assert pos.shape == input_ids.shape and pos.dtype == input_ids.dtype
    assert torch.equal(pos, torch.arange(9).expand(3, 9))
    # Initialisation: both embedding tables uniform(-0.05, 0.05), shared by encoder and decoder.
    torch.manual_seed(41)
    fresh = Transformer(100, 0, 1, 64, 1, 16, 4, 32, 0.1)
    for table in (fresh.emb_word.weight, fresh.emb_pos.weight):
        assert table.abs().max() <= 0.05 and table.abs().max() > 0.04


def test_part1_and_part2_models_compute_the_same_function():
    model, input_ids, labels, (D, H, FF) = part1_model_and_batch()
    config = TransformerConfig(vocab_size=37, pad_token_id=0, eos_token_id=1, n_positions=16,
                               num_encoder_layers=2, num_decoder_layers=2, d_model=D, d_ff=FF,
                               d_kv=D // H, dropout_rate=0.0)
    model2 = Seq2SeqTransformer(config).double()
    source = model.state_dict()
    mapped = {}
    for key in model2.state_dict():
        k = key.replace("encoder.layers.", "encoder_layers.")
        k = k.replace("decoder.layers.", "decoder_layers.")
        k = k.removeprefix("encoder.").removeprefix("decoder.")  # shared embeddings
        mapped[key] = source[k]
    model2.load_state_dict(mapped)
    # The notebook's checkpoint names: shared embeddings appear under each owner.
    assert {"emb_word.weight", "encoder.emb_word.weight", "decoder.emb_pos.weight",
            "lm_head.weight", "lm_head.bias",
            "decoder.layers.1.cross_attn.o_proj.bias"} <= set(mapped)
    out1, out2 = model(input_ids, None, labels), model2(input_ids=input_ids, labels=labels)
    assert_close(out2.loss, out1.loss)
    assert_close(out2.logits, out1.logits)


# ----------------------------------------------------- (g) t5-small numbers, logs replay

def test_t5_small_tokenizer_numbers():
    assert (T5_VOCAB_SIZE, T5_PAD_ID, T5_EOS_ID) == (32100, 0, 1)
    config = TransformerConfig()
    assert (config.vocab_size, config.pad_token_id, config.eos_token_id) == (32100, 0, 1)
    config, stack = notebook_stack()
    assert stack.emb_word.num_embeddings == 32100 and stack.config.pad_token_id == 0


PART1_NAMES = ["scaled_dot_product_attention.3", "scaled_dot_product_attention.6",
               "multihead_attention.2.0", "multihead_attention.2.1",
               "multihead_attention.4.0", "multihead_attention.4.1",
               "transformer_layer.2.0", "transformer_layer.2.1",
               "transformer_layer.4.0", "transformer_layer.4.1"]
PART2_NAMES = ["transformer_layer.2.0", "transformer_layer.2.1",
               "transformer_layer.4.0", "transformer_layer.4.1",
               "transformer_layer.6.0", "transformer_layer.6.1",
               "transformer_layer.2.state_1", "transformer_layer.2.state_2"]
SHAPES = {"scaled_dot_product_attention.3": [7, 5, 6], "scaled_dot_product_attention.6": [3, 5, 4],
          "multihead_attention": [2, 5, 128], "transformer_layer.2": [3, 4, 128],
          "transformer_layer.4": [3, 4, 128], "transformer_layer.6": [4, 5, 128]}


def test_log_replay_names_shapes_and_agreement(logs):
    part1, part2 = logs["part1"], logs["part2"]
    assert logs["rng_untouched"]

    for entries, names in ((part1, PART1_NAMES), (part2, PART2_NAMES)):
        assert set(entries) == {f"{n}.{f}" for n in names for f in ("shape", "value")}
        for name in names:
            prefix = next(p for p in SHAPES if name.startswith(p))
            assert entries[f"{name}.shape"] == SHAPES[prefix]
            value = entries[f"{name}.value"]
            assert len(value) == 5 and all(isinstance(x, float) for x in value)

    def value(entries, name):
        return torch.tensor(entries[f"{name}.value"])

    def close(a, b):  # float32 torch vs reference
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    for name in ("multihead_attention.2", "multihead_attention.4"):
        close(value(part1, f"{name}.1"), value(part1, f"{name}.0"))
    for name in ("transformer_layer.2", "transformer_layer.4", "transformer_layer.6"):
        close(value(part2, f"{name}.1"), value(part2, f"{name}.0"))
    close(value(part2, "transformer_layer.2.state_2"), value(part2, "transformer_layer.2.state_1"))
    for name in ("transformer_layer.2", "transformer_layer.4"):
        # Part I logs the student's output under .0 too; part II's .0 is torch's.
        assert part1[f"{name}.0.value"] == part1[f"{name}.1.value"] == part2[f"{name}.1.value"]
        close(value(part1, f"{name}.0"), value(part2, f"{name}.0"))


def test_log_replay_attention_entries_against_torch_sdpa(logs):
    torch.manual_seed(200)
    q, k, v = torch.randn(7, 5, 6), torch.randn(7, 3, 6), torch.randn(7, 3, 6)
    o3 = F.scaled_dot_product_attention(q, k, v)
    torch.manual_seed(220)
    q, k, v = torch.randn(3, 5, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    pad = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]).bool()
    o6 = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, :] & ~future_bool(5, 5))
    logged = logs["part1"]
    torch.testing.assert_close(torch.tensor(logged["scaled_dot_product_attention.3.value"]),
                               o3.view(-1)[5:10], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(logged["scaled_dot_product_attention.6.value"]),
                               o6.view(-1)[3:8], rtol=1e-5, atol=1e-6)


def test_log_replay_layer_entries_against_this_files_replay(logs):
    """transformer_layer.6 rebuilt here from the cell (seed 950 weights, seed 1300 inputs)."""
    _, _, dec0, _ = notebook_torch_layers()
    torch.manual_seed(1300)
    x, e = torch.randn(4, 5, 128), torch.randn(4, 3, 128)
    pad = right_padding([4, 5, 3, 2], 5)
    e_pad = torch.tensor([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]]).byte()
    with torch.no_grad():
        y0 = dec0(x, e, tgt_mask=future_bool(5, 5), tgt_key_padding_mask=pad.bool(),
                  memory_key_padding_mask=e_pad.bool())
    logged = logs["part2"]
    torch.testing.assert_close(torch.tensor(logged["transformer_layer.6.0.value"]),
                               y0.view(-1)[380:385], rtol=1e-5, atol=1e-6)
