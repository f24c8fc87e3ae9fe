"""BERT encoder (Devlin et al., 2019): the part of minbert you implement.

Parts marked TODO raise NotImplementedError until you write them:
  * BertSelfAttention.attention
  * BertLayer.add_norm
  * BertLayer.forward
  * BertModel.embed

Keep the names of the attributes created in the __init__ methods: the pretrained weights are
loaded into parameters by these names, and a renamed parameter fails to load.

Shapes: bs = batch size, seq = sequence length, hidden = config.hidden_size,
heads = config.num_attention_heads, head_size = hidden // heads.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from base_bert import BertPreTrainedModel
from utils import *


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
        # Dropout on the attention probabilities (the normalised scores), as in the original
        # Transformer and BERT.
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transform(self, x, linear_layer):
        """Project and split into heads: [bs, seq, hidden] -> [bs, heads, seq, head_size]."""
        bs, seq_len = x.shape[:2]
        proj = linear_layer(x)
        proj = proj.view(bs, seq_len, self.num_attention_heads, self.attention_head_size)
        proj = proj.transpose(1, 2)
        return proj

    def attention(self, key, query, value, attention_mask):
        """Scaled dot-product attention, eq. (1) of https://arxiv.org/abs/1706.03762, per head.

        key, query, value: [bs, heads, seq, head_size].
        attention_mask: [bs, 1, 1, seq], additive: 0 for real tokens, a large negative number
        for padding tokens.
        Returns [bs, seq, hidden]: the heads' outputs concatenated.
        """
        # TODO: the scores S [bs, heads, seq, seq], S[b, h, i, j] = score of token i attending
        #       to token j in head h; mask out padding with attention_mask; normalise;
        #       apply self.dropout to the probabilities; weight the values; merge the heads.
        raise NotImplementedError

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
        self.interm_af = F.gelu
        self.out_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.out_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.out_dropout = nn.Dropout(config.hidden_dropout_prob)

    def add_norm(self, input, output, dense_layer, dropout, ln_layer):
        """Applied after the attention and after the feed-forward network.

        input: the input of that sublayer [bs, seq, hidden].
        output: the output of that sublayer.
        dense_layer: transforms `output`; dropout: applied to the result;
        ln_layer: the layer norm applied to the residual sum.
        """
        # TODO
        raise NotImplementedError

    def forward(self, hidden_states, attention_mask):
        """One encoder block (left half of Figure 1 of https://arxiv.org/abs/1706.03762).

        hidden_states: [bs, seq, hidden], from the embeddings or the previous layer.
        attention_mask: [bs, 1, 1, seq]. Returns [bs, seq, hidden].
        """
        # TODO: 1. multi-head attention (self.self_attention)
        #       2. add-norm of its input and output
        #       3. feed-forward: self.interm_dense, then self.interm_af
        #       4. add-norm of the feed-forward's input and output
        raise NotImplementedError


class BertModel(BertPreTrainedModel):
    """Embeddings (self.embed), a stack of BertLayers (self.encode), and the pooler on the
    [CLS] token (self.forward)."""

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
        """input_ids: [bs, seq] -> [bs, seq, hidden]."""
        input_shape = input_ids.size()
        seq_length = input_shape[1]

        # TODO: the word embeddings of input_ids (self.word_embedding).

        # TODO: the position embeddings (self.pos_embedding) of these position indices.
        pos_ids = self.position_ids[:, :seq_length]

        # Single-sentence inputs: every token is of type 0.
        tk_type_ids = torch.zeros(input_shape, dtype=torch.long, device=input_ids.device)
        tk_type_embeds = self.tk_type_embedding(tk_type_ids)

        # TODO: add the three embeddings, then apply self.embed_layer_norm and
        #       self.embed_dropout, and return the result.
        raise NotImplementedError

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
