"""Replay of the summarization notebooks' logging test cells, with any code playing the student's.

Each notebook fills a dict TO_SAVE and writes it to `submission_logs.json`: a `time` entry and,
for seeded inputs, `{name}.shape` (list of ints) and `{name}.value` (5 floats, a slice of the
flattened output). `part1_log_entries(code)` and `part2_log_entries(code)` rerun those cells
with `code` (a module with the notebook's `scaled_dot_product_attention`, `MultiheadAttention`,
`TransformerLayer` and `TransformerStack`) playing the student's and return every entry except
`time`, as the notebook would write them (float32, CPU, torch's default dtype).

Both sides of grading run it: the staff side with the reference (reference/seq2seq/
transformer.py), for the entries a log must hold; the sandbox with the submitted code (it is a
support file of the assignment), to check that a submitted log is what that code writes.

The cells draw their weights and inputs from torch's global generator: `torch.manual_seed(s)`,
then module construction, then `nn.init.normal_` or `torch.randn`. Every draw is replayed here
in the cells' order, with the cells' own torch modules (`nn.MultiheadAttention`,
`nn.TransformerEncoderLayer`, `nn.TransformerDecoderLayer`) where they use them, and the
code's classes, constructed in the notebook's order, where the student's run. The
caller's generator state is left as it was.

Entries (index ".0" is torch's module, ".1" the student's, unless said otherwise):

Part I (q_summarize_part_1.ipynb)
  scaled_dot_product_attention.3   seed 200: q randn(7,5,6), k randn(7,3,6), v randn(7,3,6);
                                   no mask. Shape [7,5,6], value flat[5:10].
  scaled_dot_product_attention.6   seed 220: q, k, v randn(3,5,4); key padding
                                   [[0,0,0,0,1],[0,0,0,0,0],[0,0,0,1,1]], causal.
                                   Shape [3,5,4], value flat[3:8].
  multihead_attention.2.{0,1}      weights: seed 350, nn.MultiheadAttention(128, 4,
                                   batch_first=True), then normal_(std 0.05) on in_proj_weight,
                                   in_proj_bias, out_proj.weight, out_proj.bias, copied into
                                   the code's class (q/k/v = rows 0:128, 128:256, 256:384).
                                   Seed 500: q randn(2,5,128), k, v randn(2,3,128); no mask.
                                   Shape [2,5,128], value flat[126:131].
  multihead_attention.4.{0,1}      seed 700: q, k, v randn(2,5,128); key padding
                                   [[0,0,1,1,1],[0,0,0,0,1]], causal (torch: float -inf
                                   upper-triangular attn_mask). Shape [2,5,128], flat[126:131].
  transformer_layer.2.{0,1}        encoder: seed 750, nn.TransformerEncoderLayer(128, 4, 512,
                                   dropout 0, batch_first) then normal_(std 0.05) on the
                                   attention's four tensors, linear1.weight/bias,
                                   linear2.weight/bias (LayerNorms stay 1 and 0), copied.
                                   Seed 900: x randn(3,4,128), padding
                                   [[0,0,0,1],[0,0,0,1],[0,0,1,1]]. Shape [3,4,128], flat[126:131].
  transformer_layer.4.{0,1}        decoder: seed 950, nn.TransformerDecoderLayer likewise
                                   (self_attn, multihead_attn, linear1, linear2). Seed 1100:
                                   x randn(3,4,128), e randn(3,3,128), target padding
                                   [[0,0,0,0],[0,0,0,1],[0,0,1,1]], memory padding
                                   [[0,0,0],[0,0,0],[0,0,1]], causal. Shape [3,4,128],
                                   flat[126:131].
  Part I's transformer_layer cells write the STUDENT's output under both .0 and .1 (a slip in
  the notebook: `y21` / `y41` twice), with torch's shape under both.

Part II (q_summarization_part2.ipynb); the part I attention entries are not logged again.
  transformer_layer.2.{0,1}, .4.{0,1}  as in part I, except that .0 is torch's output now.
  transformer_layer.6.{0,1}        decoder of seed 950. Seed 1300: x randn(4,5,128),
                                   e randn(4,3,128), target padding
                                   [[0,0,0,0,1],[0,0,0,0,0],[0,0,0,1,1],[0,0,1,1,1]], memory
                                   padding [[0,0,1],[0,1,1],[0,0,1],[0,0,0]]. .0: torch, full
                                   causal pass; .1: the code's layer fed one token at a time with
                                   past_kv = x[:, :i] and no target mask. Shape [4,5,128],
                                   value flat[380:385].
  transformer_layer.2.state_{1,2}  (a TransformerStack despite the name) seed 1400:
                                   nn.Embedding(32100, 128), nn.Embedding(1024, 128), both
                                   uniform_(-0.05, 0.05), nn.LayerNorm(128), decoder
                                   TransformerStack (2 layers, D 128, d_ff 512, d_kv 32 -> 4
                                   heads, dropout 0, pad 0); ids randint(10, 100, (5, 6)) padded
                                   with 0 where [[0,0,0,0,1,1],[0,0,0,0,0,1],[0,0,0,1,1,1],
                                   [0,0,0,0,0,0],[0,0,1,1,1,1]], encoder states randn(5,3,128)
                                   (checked by asserts, not logged); then ids
                                   randint(10, 100, (3, 4)) padded where
                                   [[0,0,0,0],[0,0,0,0],[0,0,0,1]], encoder states
                                   randn(3,5,128), encoder padding
                                   [[0,0,0,0,1],[0,0,0,1,1],[0,0,0,0,0]]. state_1: one full
                                   pass; state_2: one token at a time with the cache.
                                   Shape [3,4,128], value flat[380:385].
  The vocabulary 32100, pad 0 and eos 1 are the t5-small tokenizer's (the cell reads them
  from the tokenizer). The notebook pads with `input_ids[uint8_mask] = 0`, which torch of 2023
  read as a boolean mask; torch 2.13 refuses uint8 masks, so the replay uses `.bool()`.
"""
import warnings

import torch
import torch.nn as nn

from types import SimpleNamespace

# The t5-small tokenizer's numbers, which part II's cell reads from the tokenizer.
T5_VOCAB_SIZE, T5_PAD_ID, T5_EOS_ID = 32100, 0, 1
D_MODEL = 128
N_HEADS = 4
D_FFN = 512


def _future_mask(L):
    """The notebooks' `future_mask[:L, :L]`: float, -inf above the diagonal (torch's additive
    attn_mask)."""
    return torch.triu(torch.full((L, L), float("-inf")), 1)


def _log(entries, name, shape_of, value_of, start):
    entries[f"{name}.shape"] = list(shape_of.shape)
    entries[f"{name}.value"] = value_of.reshape(-1)[start:start + 5].tolist()


def _init_normal(*tensors):
    for t in tensors:
        nn.init.normal_(t, mean=0.0, std=0.05)


def _copy_attention(ours, theirs):
    """torch's packed nn.MultiheadAttention -> the four projections of the course's class."""
    d = ours.q_proj.in_features
    w, b = theirs.in_proj_weight.data, theirs.in_proj_bias.data
    ours.q_proj.weight.data.copy_(w[:d]); ours.q_proj.bias.data.copy_(b[:d])
    ours.k_proj.weight.data.copy_(w[d:2 * d]); ours.k_proj.bias.data.copy_(b[d:2 * d])
    ours.v_proj.weight.data.copy_(w[2 * d:]); ours.v_proj.bias.data.copy_(b[2 * d:])
    ours.o_proj.weight.data.copy_(theirs.out_proj.weight.data)
    ours.o_proj.bias.data.copy_(theirs.out_proj.bias.data)


def _copy_feed_forward(ours, theirs):
    ours.fc1.weight.data.copy_(theirs.linear1.weight.data)
    ours.fc1.bias.data.copy_(theirs.linear1.bias.data)
    ours.fc2.weight.data.copy_(theirs.linear2.weight.data)
    ours.fc2.bias.data.copy_(theirs.linear2.bias.data)


def _attention_entries(entries, code):
    torch.manual_seed(200)
    q, k, v = torch.randn(7, 5, 6), torch.randn(7, 3, 6), torch.randn(7, 3, 6)
    out = code.scaled_dot_product_attention(q, k, v)
    _log(entries, "scaled_dot_product_attention.3", out, out, 5)

    torch.manual_seed(220)
    q, k, v = torch.randn(3, 5, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    key_padding_mask = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]).byte()
    out = code.scaled_dot_product_attention(q, k, v, key_padding_mask=key_padding_mask, causal=True)
    _log(entries, "scaled_dot_product_attention.6", out, out, 3)

    torch.manual_seed(350)
    mha0 = nn.MultiheadAttention(embed_dim=D_MODEL, num_heads=N_HEADS, batch_first=True)
    _init_normal(mha0.in_proj_weight, mha0.in_proj_bias, mha0.out_proj.weight, mha0.out_proj.bias)
    mha1 = code.MultiheadAttention(D_MODEL, N_HEADS)
    _copy_attention(mha1, mha0)

    torch.manual_seed(500)
    q, k, v = torch.randn(2, 5, 128), torch.randn(2, 3, 128), torch.randn(2, 3, 128)
    o0, o1 = mha0(q, k, v)[0], mha1(q, k, v)
    _log(entries, "multihead_attention.2.0", o0, o0, 126)
    _log(entries, "multihead_attention.2.1", o1, o1, 126)

    torch.manual_seed(700)
    q, k, v = torch.randn(2, 5, 128), torch.randn(2, 5, 128), torch.randn(2, 5, 128)
    key_padding_mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1]]).byte()
    o0 = mha0(q, k, v, key_padding_mask=key_padding_mask.bool(), attn_mask=_future_mask(5))[0]
    o1 = mha1(q, k, v, key_padding_mask=key_padding_mask, causal=True)
    _log(entries, "multihead_attention.4.0", o0, o0, 126)
    _log(entries, "multihead_attention.4.1", o1, o1, 126)


def _layer_pairs(code):
    """The encoder pair (seed 750) and decoder pair (seed 950): (torch layer, code's layer)."""
    torch.manual_seed(750)
    enc0 = nn.TransformerEncoderLayer(D_MODEL, N_HEADS, dim_feedforward=D_FFN, dropout=0.0,
                                      batch_first=True)
    a = enc0.self_attn
    _init_normal(a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias,
                 enc0.linear1.weight, enc0.linear1.bias, enc0.linear2.weight, enc0.linear2.bias)
    enc1 = code.TransformerLayer(False, D_MODEL, N_HEADS, D_FFN, 0.0)
    _copy_attention(enc1.self_attn, enc0.self_attn)
    _copy_feed_forward(enc1, enc0)

    torch.manual_seed(950)
    dec0 = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, dim_feedforward=D_FFN, dropout=0.0,
                                      batch_first=True)
    a, c = dec0.self_attn, dec0.multihead_attn
    _init_normal(a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias,
                 c.in_proj_weight, c.in_proj_bias, c.out_proj.weight, c.out_proj.bias,
                 dec0.linear1.weight, dec0.linear1.bias, dec0.linear2.weight, dec0.linear2.bias)
    dec1 = code.TransformerLayer(True, D_MODEL, N_HEADS, D_FFN, 0.0)
    _copy_attention(dec1.self_attn, dec0.self_attn)
    _copy_attention(dec1.cross_attn, dec0.multihead_attn)
    _copy_feed_forward(dec1, dec0)
    return enc0, enc1, dec0, dec1


def _layer_entries(entries, part, code):
    enc0, enc1, dec0, dec1 = _layer_pairs(code)

    torch.manual_seed(900)
    x = torch.randn(3, 4, 128)
    x_mask = torch.tensor([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 1, 1]]).byte()
    y0 = enc0(x, src_key_padding_mask=x_mask.bool())
    y1 = enc1(x, x_mask)
    # Part I logs the student's output under .0 as well (see the module docstring).
    _log(entries, "transformer_layer.2.0", y0, y1 if part == 1 else y0, 126)
    _log(entries, "transformer_layer.2.1", y0 if part == 1 else y1, y1, 126)

    torch.manual_seed(1100)
    x, e = torch.randn(3, 4, 128), torch.randn(3, 3, 128)
    x_mask = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1]]).byte()
    e_mask = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 1]]).byte()
    y0 = dec0(x, e, tgt_mask=_future_mask(4), tgt_key_padding_mask=x_mask.bool(),
              memory_key_padding_mask=e_mask.bool())
    y1 = dec1(x, x_mask, e, e_mask)
    _log(entries, "transformer_layer.4.0", y0, y1 if part == 1 else y0, 126)
    _log(entries, "transformer_layer.4.1", y0 if part == 1 else y1, y1, 126)
    if part == 1:
        return

    torch.manual_seed(1300)
    x, e = torch.randn(4, 5, 128), torch.randn(4, 3, 128)
    x_mask = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1],
                           [0, 0, 1, 1, 1]]).byte()
    e_mask = torch.tensor([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]]).byte()
    y0 = dec0(x, e, tgt_mask=_future_mask(5), tgt_key_padding_mask=x_mask.bool(),
              memory_key_padding_mask=e_mask.bool())
    steps = []
    for i in range(x.size(1)):
        y_i, _ = dec1(x[:, i:i + 1], None, e, e_mask, use_cache=True,
                      past_kv=x[:, :i] if i > 0 else None)
        steps.append(y_i)
    y1 = torch.cat(steps, dim=1)
    _log(entries, "transformer_layer.6.0", y0, y0, 380)
    _log(entries, "transformer_layer.6.1", y1, y1, 380)


def notebook_stack(code):
    """Part II's `test_transformer_stack_with_cache` set-up: seed 1400, t5-small sizes, the
    decoder stack built in the notebook's order. -> (config, stack). The notebook's config is an
    HF `PretrainedConfig` built from these keyword arguments; a namespace of them stands in."""
    config = SimpleNamespace(
        is_encoder_decoder=True, use_cache=True, decoder_start_token_id=T5_EOS_ID,
        vocab_size=T5_VOCAB_SIZE, pad_token_id=T5_PAD_ID, eos_token_id=T5_EOS_ID,
        n_positions=1024, num_decoder_layers=2, d_model=128, d_ff=512, d_kv=32,
        dropout_rate=0.0)
    torch.manual_seed(1400)
    emb_word = nn.Embedding(config.vocab_size, config.d_model)
    emb_pos = nn.Embedding(config.n_positions, config.d_model)
    emb_word.weight.data.uniform_(-0.05, 0.05)
    emb_pos.weight.data.uniform_(-0.05, 0.05)
    emb_ln = nn.LayerNorm(config.d_model)
    return config, code.TransformerStack(config, emb_word, emb_pos, emb_ln, True)


def _stack_entries(entries, code):
    config, stack = notebook_stack(code)

    # The first batch is only asserted on in the notebook, but its draws move the generator.
    input_ids = torch.randint(10, 100, (5, 6))
    torch.randn(5, 3, 128)

    input_ids = torch.randint(10, 100, (3, 4))
    padding_mask = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]).byte()
    input_ids[padding_mask.bool()] = config.pad_token_id
    encoder_hidden_states = torch.randn(3, 5, 128)
    encoder_padding_mask = torch.tensor([[0, 0, 0, 0, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]).byte()

    state_1, _, _ = stack(input_ids, encoder_hidden_states, encoder_padding_mask)
    _log(entries, "transformer_layer.2.state_1", state_1, state_1, 380)

    steps, past_key_values = [], None
    for i in range(input_ids.size(1)):
        state, _, past_key_values = stack(input_ids[:, i:i + 1], encoder_hidden_states,
                                          encoder_padding_mask, use_cache=True,
                                          past_key_values=past_key_values)
        steps.append(state)
    state_2 = torch.cat(steps, dim=1)
    _log(entries, "transformer_layer.2.state_2", state_2, state_2, 380)


def _replay(fill):
    if torch.get_default_dtype() != torch.float32:
        raise RuntimeError("the notebooks run with torch's default dtype float32")
    entries = {}
    with torch.random.fork_rng(devices=[]), torch.no_grad(), warnings.catch_warnings():
        # The cells give torch a float attn_mask with a bool key_padding_mask; torch warns.
        warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
        fill(entries)
    return entries


def part1_log_entries(code):
    """Part I's `submission_logs.json` entries, `time` excepted, with `code` as the student's."""
    def fill(entries):
        _attention_entries(entries, code)
        _layer_entries(entries, 1, code)
    return _replay(fill)


def part2_log_entries(code):
    """Part II's `submission_logs.json` entries, `time` excepted, with `code` as the student's."""
    def fill(entries):
        _layer_entries(entries, 2, code)
        _stack_entries(entries, code)
    return _replay(fill)
