"""CS182 summarization, part II (q_summarization_part2.ipynb): the starter.

Everything of part I is given. Add key/value caching to `TransformerLayer.forward` (use_cache,
past_kv) and to `TransformerStack.forward` (use_cache, past_key_values, positions offset by the
cached length), so that decoding one token at a time from the cache gives the outputs of the full
pass. See the notebook for the details; the grader builds these classes as the notebook does.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# The t5-small tokenizer's numbers, which part II's test cells take from the tokenizer.
T5_VOCAB_SIZE = 32100
T5_PAD_ID = 0
T5_EOS_ID = 1


def scaled_dot_product_attention(q, k, v, key_padding_mask=None, causal=False):
    """softmax(q k^T / sqrt(d)) v, one attention problem per leading index.

    q [n, Lq, d], k and v [n, Lk, d]; key_padding_mask [n, Lk], nonzero = padding (that key is
    ignored); causal: query i sees keys j <= i. Returns [n, Lq, d].
    """
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # [n, Lq, Lk]
    if key_padding_mask is not None:
        # exp(-inf) = 0: a padded key gets exactly zero weight, whatever its score.
        scores = scores.masked_fill(key_padding_mask.bool()[:, None, :], float("-inf"))
    if causal:
        Lq, Lk = scores.shape[-2:]
        future = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).triu(1)  # key j > query i
        scores = scores.masked_fill(future, float("-inf"))
    # At least float32: exp() in fp16 loses too much (the notebook's advice for fp16 training).
    weights = F.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    return weights.to(v.dtype) @ v  # [n, Lq, d]


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
        Returns [B, Lq, D]."""
        B, Lq, D = q.shape
        Lk = k.size(1)
        H, Dh = self.n_heads, self.d_head

        def split_heads(x, L):  # [B, L, D] -> [B*H, L, Dh], batch-major like the mask below
            return x.view(B, L, H, Dh).transpose(1, 2).reshape(B * H, L, Dh)

        q = split_heads(self.q_proj(q), Lq)
        k = split_heads(self.k_proj(k), Lk)
        v = split_heads(self.v_proj(v), Lk)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.repeat_interleave(H, dim=0)  # [B*H, Lk]
        out = scaled_dot_product_attention(q, k, v, key_padding_mask, causal)  # [B*H, Lq, Dh]
        out = out.view(B, H, Lq, Dh).transpose(1, 2).reshape(B, Lq, D)  # heads side by side
        return self.o_proj(out)


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

    def forward(self, x, padding_mask, encoder_out=None, encoder_padding_mask=None,
                use_cache=None, past_kv=None):
        """x [B, L, D], padding_mask [B, L] (nonzero = padding; may be None);
        decoder only: encoder_out [B, S, D], encoder_padding_mask [B, S].

        Part II: with past_kv [B, t-1, D] (the layer inputs of the earlier tokens), x is the
        one new token [B, 1, D]. Returns x [B, L, D], or (x, kv) when use_cache, where
        kv = cat(past_kv, x) [B, t, D] is the cache for the next step.
        """
        ########################################################################
        # TODO: use the cache (past_kv) and build the new one (kv) when use_cache
        ########################################################################
        attn = self.self_attn(x, x, x, padding_mask, causal=self.is_decoder)
        ########################################################################
        x = self.self_attn_ln(x + self.self_attn_drop(attn))

        if self.is_decoder:
            attn = self.cross_attn(x, encoder_out, encoder_out, encoder_padding_mask)
            x = self.cross_attn_ln(x + self.cross_attn_drop(attn))

        ffn = self.fc2(F.relu(self.fc1(x)))
        x = self.ffn_ln(x + self.ffn_drop(ffn))
        return x


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
        """[B, L] -> [B, L] positions 0..L-1 in every row, same dtype as input_ids."""
        B, L = input_ids.shape
        return torch.arange(L, dtype=input_ids.dtype, device=input_ids.device).expand(B, L)

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


@dataclass
class TransformerConfig:
    """The config fields part II reads (the notebook passes an HF `PretrainedConfig`). Defaults
    are the notebook's trained model: 6 + 6 layers, D = 512, 8 heads of d_kv = 64, t5-small
    vocabulary. d_kv is the per-head width: n_heads = d_model // d_kv."""
    vocab_size: int = T5_VOCAB_SIZE
    pad_token_id: int = T5_PAD_ID
    eos_token_id: int = T5_EOS_ID
    n_positions: int = 1024
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_model: int = 512
    d_ff: int = 2048
    d_kv: int = 64
    dropout_rate: float = 0.1


class TransformerStack(nn.Module):
    """Part II's encoder or decoder: embeddings (shared, passed in) and a stack of layers,
    with the decoder able to run one token at a time from a cache."""

    def __init__(self, config, emb_word, emb_pos, emb_ln, is_decoder):
        super().__init__()
        self.config = config
        self.emb_word = emb_word
        self.emb_pos = emb_pos
        self.emb_ln = emb_ln
        self.is_decoder = is_decoder
        n_layers = config.num_decoder_layers if is_decoder else config.num_encoder_layers
        n_heads = config.d_model // config.d_kv
        self.layers = nn.ModuleList([
            TransformerLayer(is_decoder, config.d_model, n_heads, config.d_ff, config.dropout_rate)
            for _ in range(n_layers)
        ])

    def make_positions(self, input_ids, padding_mask):
        """[B, L] -> [B, L] positions 0..L-1 in every row, same dtype as input_ids."""
        B, L = input_ids.shape
        return torch.arange(L, dtype=input_ids.dtype, device=input_ids.device).expand(B, L)

    def forward(self, input_ids, encoder_hidden_states=None, encoder_padding_mask=None,
                use_cache=None, past_key_values=None):
        """input_ids [B, L]; decoder: encoder_hidden_states [B, S, D], encoder_padding_mask
        [B, S]. With use_cache, past_key_values is None (first step) or one [B, t-1, D] cache
        per layer, and input_ids is the new token [B, 1].

        Returns (state [B, L, D], padding_mask [B, L] uint8 with 1 = padding, as the notebook
        builds it, and the per-layer caches [B, t, D] when use_cache, else None).
        """
        if past_key_values is None:
            past_key_values = [None] * len(self.layers)
        padding_mask = input_ids.eq(self.config.pad_token_id).byte()
        positions = self.make_positions(input_ids, padding_mask)
        ########################################################################
        # TODO: modify this part of code (positions continue after the cache)
        ########################################################################
        state = self.emb_ln(self.emb_word(input_ids) + self.emb_pos(positions))
        ########################################################################
        for layer in self.layers:
            ####################################################################
            # TODO: modify this part of code (each layer's cache)
            ####################################################################
            state = layer(state, padding_mask, encoder_hidden_states, encoder_padding_mask)
            ####################################################################
        return state, padding_mask, None


class Seq2SeqTransformer(nn.Module):
    """Part II's model (the notebook's given `Transformer(config)`, renamed here because part
    I's `Transformer` has another constructor): shared embeddings, an encoder and a decoder
    `TransformerStack`, tied output layer. Same function as part I's `Transformer` with the
    same weights; parameter names are the notebook's (its `hw11.pytorch_model.bin` loads).
    HF `generate` plumbing (`prepare_inputs_for_generation`, `_reorder_cache`, ...) is left
    out: `greedy_generate` below decodes."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.emb_word = nn.Embedding(config.vocab_size, config.d_model)
        self.emb_pos = nn.Embedding(config.n_positions, config.d_model)
        self.emb_word.weight.data.uniform_(-0.05, 0.05)
        self.emb_pos.weight.data.uniform_(-0.05, 0.05)
        self.emb_ln = nn.LayerNorm(config.d_model)
        self.encoder = TransformerStack(config, self.emb_word, self.emb_pos, self.emb_ln, False)
        self.decoder = TransformerStack(config, self.emb_word, self.emb_pos, self.emb_ln, True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)
        self.lm_head.weight = self.emb_word.weight
        self.criterion = nn.CrossEntropyLoss(ignore_index=-100)

    def forward(self, input_ids=None, decoder_input_ids=None, encoder_outputs=None, labels=None,
                use_cache=None, past_key_values=None):
        """Teacher forcing: input_ids [B, S] and labels [B, T]. Decoding: encoder_outputs (the
        encoder's (state, padding_mask, None)), decoder_input_ids [B, 1] and the cache.
        Returns Seq2SeqOutput(loss or None, logits [B, T, V], caches or None)."""
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids)
        enc_state, enc_padding_mask, _ = encoder_outputs
        if decoder_input_ids is None:
            decoder_input_ids = shift_labels_right(
                labels, self.config.eos_token_id, self.config.pad_token_id)
        dec_state, _, present_key_values = self.decoder(
            decoder_input_ids, enc_state, enc_padding_mask, use_cache,
            past_key_values if use_cache else None)
        logits = self.lm_head(dec_state)
        loss = None
        if labels is not None:
            loss = self.criterion(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
        return Seq2SeqOutput(loss, logits, present_key_values)


@torch.no_grad()
def greedy_generate(model, input_ids, max_new_tokens, use_cache=True):
    """Greedy decoding with a `Seq2SeqTransformer`.

    input_ids [B, S] (right-padded with pad_token_id). Decoding starts from eos_token_id (the
    course's decoder start token); a row that has produced eos continues with pad_token_id.
    Stops after max_new_tokens or once every row has produced eos. Returns [B, 1 + n] token ids,
    the start token first (as HF's generate does).

    use_cache=True runs the decoder on the new token only, from the per-layer caches;
    use_cache=False reruns the decoder over the whole prefix at every step (the naive
    algorithm). Both give the same tokens, provided the model never emits pad_token_id before
    eos: without the cache a pad token in the prefix is masked out as padding, with the cache
    its hidden state stays visible (the course's design; a trained model never emits pad, whose
    labels are -100). Dropout must be off (model.eval() or p = 0).
    """
    eos_id, pad_id = model.config.eos_token_id, model.config.pad_token_id
    enc_state, enc_padding_mask, _ = model.encoder(input_ids)
    B = input_ids.size(0)
    generated = torch.full((B, 1), eos_id, dtype=torch.long, device=input_ids.device)
    finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    past_key_values = None
    for _ in range(max_new_tokens):
        if use_cache:
            state, _, past_key_values = model.decoder(
                generated[:, -1:], enc_state, enc_padding_mask,
                use_cache=True, past_key_values=past_key_values)
        else:
            state, _, _ = model.decoder(generated, enc_state, enc_padding_mask)
        logits = model.lm_head(state[:, -1])  # [B, V], the last position predicts the next
        next_token = logits.argmax(dim=-1).masked_fill(finished, pad_id)
        generated = torch.cat([generated, next_token[:, None]], dim=1)
        finished |= next_token == eos_id
        if finished.all():
            break
    return generated
