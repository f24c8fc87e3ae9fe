"""BERT encoder (Devlin et al., 2019), staff reference of minbert's bert.py.

Written against the starter's API: the attribute names below are the parameter names that
pretrained checkpoints are mapped onto (base_bert.starter_name), so they must not change.

Shapes: bs = batch size, seq = sequence length, hidden = config.hidden_size,
heads = config.num_attention_heads, head_size = hidden // heads.

One BertLayer is a post-LayerNorm Transformer encoder block (Vaswani et al., 2017, Fig. 1):

    h = LayerNorm(x + Dropout(Dense(MultiHeadSelfAttention(x))))
    y = LayerNorm(h + Dropout(Dense(GELU(Dense(h)))))
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from base_bert import BertPreTrainedModel
from utils import get_extended_attention_mask


class BertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size

        # One projection each for queries, keys and values; all heads at once.
        self.query = nn.Linear(config.hidden_size, self.all_head_size)
        self.key = nn.Linear(config.hidden_size, self.all_head_size)
        self.value = nn.Linear(config.hidden_size, self.all_head_size)
        # Dropout on the attention probabilities, as in the original Transformer and BERT.
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transform(self, x, linear_layer):
        """Project and split into heads: [bs, seq, hidden] -> [bs, heads, seq, head_size]."""
        bs, seq_len = x.shape[:2]
        proj = linear_layer(x)
        proj = proj.view(bs, seq_len, self.num_attention_heads, self.attention_head_size)
        proj = proj.transpose(1, 2)
        return proj

    def attention(self, key, query, value, attention_mask):
        """Scaled dot-product attention of every head, heads merged back.

        key, query, value: [bs, heads, seq, head_size].
        attention_mask: [bs, 1, 1, seq], additive: 0 for real tokens, -10000 for padding.
        Returns [bs, seq, hidden].
        """
        bs, _, seq_len, _ = query.shape
        # scores[b, h, i, j]: how strongly token i attends to token j in head h. [bs, heads, seq, seq]
        scores = query @ key.transpose(-2, -1)
        # Dividing by sqrt(head_size) keeps the logits' variance independent of head_size,
        # so the softmax does not saturate.
        scores = scores / math.sqrt(self.attention_head_size)
        # Padding keys get a huge negative logit, hence zero probability; broadcasts over h, i.
        scores = scores + attention_mask
        # Normalise over the keys j: each query's weights sum to 1.
        probs = F.softmax(scores, dim=-1)
        probs = self.dropout(probs)
        # Weighted sum of the values. [bs, heads, seq, head_size]
        context = probs @ value
        # Concatenate the heads: [bs, seq, heads, head_size] -> [bs, seq, hidden].
        context = context.transpose(1, 2)
        context = context.reshape(bs, seq_len, self.all_head_size)
        return context

    def forward(self, hidden_states, attention_mask):
        """hidden_states: [bs, seq, hidden]; attention_mask: [bs, 1, 1, seq] -> [bs, seq, hidden]."""
        key_layer = self.transform(hidden_states, self.key)
        value_layer = self.transform(hidden_states, self.value)
        query_layer = self.transform(hidden_states, self.query)
        attn_value = self.attention(key_layer, query_layer, value_layer, attention_mask)
        return attn_value


class BertLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        # multi-head self-attention and the add-norm after it
        self.self_attention = BertSelfAttention(config)
        self.attention_dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention_dropout = nn.Dropout(config.hidden_dropout_prob)
        # position-wise feed-forward network and the add-norm after it
        self.interm_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.interm_af = F.gelu  # exact (erf) GELU, BERT's "gelu"
        self.out_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.out_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.out_dropout = nn.Dropout(config.hidden_dropout_prob)

    def add_norm(self, input, output, dense_layer, dropout, ln_layer):
        """Residual connection, then LayerNorm: ln_layer(input + dropout(dense_layer(output))).

        input: the sublayer's input, the residual branch [bs, seq, hidden].
        output: the sublayer's output, projected back to hidden by dense_layer.
        """
        sublayer_out = dense_layer(output)
        sublayer_out = dropout(sublayer_out)
        return ln_layer(input + sublayer_out)

    def forward(self, hidden_states, attention_mask):
        """hidden_states: [bs, seq, hidden]; attention_mask: [bs, 1, 1, seq] -> [bs, seq, hidden]."""
        attn_value = self.self_attention(hidden_states, attention_mask)
        attn_out = self.add_norm(
            hidden_states, attn_value, self.attention_dense, self.attention_dropout, self.attention_layer_norm
        )
        # [bs, seq, intermediate]
        interm = self.interm_dense(attn_out)
        interm = self.interm_af(interm)
        layer_out = self.add_norm(attn_out, interm, self.out_dense, self.out_dropout, self.out_layer_norm)
        return layer_out


class BertModel(BertPreTrainedModel):
    """Embeddings, a stack of BertLayers, and the pooler on the [CLS] token."""

    def __init__(self, config):
        super().__init__(config)
        self.config = config

        # embeddings
        self.word_embedding = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.pos_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.tk_type_embedding = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.embed_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.embed_dropout = nn.Dropout(config.hidden_dropout_prob)
        # Positions 0..max-1 as a buffer, so they follow the model's device. [1, max_position_embeddings]
        position_ids = torch.arange(config.max_position_embeddings).unsqueeze(0)
        self.register_buffer("position_ids", position_ids)

        # encoder
        self.bert_layers = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

        # pooler: a sentence representation from the [CLS] token
        self.pooler_dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.pooler_af = nn.Tanh()

        self.init_weights()

    def embed(self, input_ids):
        """input_ids: [bs, seq] -> [bs, seq, hidden]: word + position + token type, then LayerNorm."""
        input_shape = input_ids.size()
        seq_length = input_shape[1]

        inputs_embeds = self.word_embedding(input_ids)

        # Absolute positions 0..seq-1, the same for every sentence. [1, seq, hidden]
        pos_ids = self.position_ids[:, :seq_length]
        pos_embeds = self.pos_embedding(pos_ids)

        # Single-sentence inputs: every token is of type 0.
        tk_type_ids = torch.zeros(input_shape, dtype=torch.long, device=input_ids.device)
        tk_type_embeds = self.tk_type_embedding(tk_type_ids)

        embeds = inputs_embeds
        embeds = embeds + pos_embeds
        embeds = embeds + tk_type_embeds
        embeds = self.embed_layer_norm(embeds)
        embeds = self.embed_dropout(embeds)
        return embeds

    def encode(self, hidden_states, attention_mask):
        """hidden_states: [bs, seq, hidden] from embed; attention_mask: [bs, seq] of 1/0."""
        # [bs, 1, 1, seq]: 0 for real tokens, a large negative number for padding
        extended_attention_mask = get_extended_attention_mask(attention_mask, self.dtype)
        for layer_module in self.bert_layers:
            hidden_states = layer_module(hidden_states, extended_attention_mask)
        return hidden_states

    def forward(self, input_ids, attention_mask):
        """input_ids, attention_mask: [bs, seq] (mask 1 = real token, 0 = padding).

        Returns {'last_hidden_state': [bs, seq, hidden], 'pooler_output': [bs, hidden]}.
        """
        embedding_output = self.embed(input_ids=input_ids)
        sequence_output = self.encode(embedding_output, attention_mask=attention_mask)

        # The pooler reads the first token, [CLS].
        first_tk = sequence_output[:, 0]
        first_tk = self.pooler_dense(first_tk)
        first_tk = self.pooler_af(first_tk)

        return {"last_hidden_state": sequence_output, "pooler_output": first_tk}
