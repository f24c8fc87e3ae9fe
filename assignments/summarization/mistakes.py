"""Known mistakes in the summarization homework (part I), as patches of the reference
(`reference/seq2seq/transformer.py`, the student's `summarization.py`), and right answers written
differently, which must keep full marks."""
from grader.mutants import Mutant

FILE = "summarization.py"

SCORES = "    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # [n, Lq, Lk]\n"
FUTURE = "        future = torch.ones(Lq, Lk, dtype=torch.bool, device=q.device).triu(1)  # key j > query i\n"
PADDING = ("        scores = scores.masked_fill(key_padding_mask.bool()[:, None, :], float(\"-inf\"))\n")
SOFTMAX = "    weights = F.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))\n"
SPLIT = "            return x.view(B, L, H, Dh).transpose(1, 2).reshape(B * H, L, Dh)\n"
MERGE = "        out = out.view(B, H, Lq, Dh).transpose(1, 2).reshape(B, Lq, D)  # heads side by side\n"
SELF_LN = "        x = self.self_attn_ln(x + self.self_attn_drop(attn))\n"
FFN_LN = "        x = self.ffn_ln(x + self.ffn_drop(ffn))\n"
# Transformer.make_positions (the stack of part II has the same line; the next method tells them apart)
POSITIONS = ("        return torch.arange(L, dtype=input_ids.dtype, device=input_ids.device).expand(B, L)\n"
             "\n    def embed(self, ids, padding_mask):\n")
EMBED = "\n    def embed(self, ids, padding_mask):\n"

MUTANTS = [
    Mutant("no_scaling", "the scores are not scaled: divide q k^T by sqrt(d), d the size of the last dimension",
           FILE, SCORES, "    scores = q @ k.transpose(-2, -1)\n"),
    Mutant("scaled_by_d", "the scores are divided by d; scaled dot-product attention divides by sqrt(d)", FILE,
           SCORES, "    scores = q @ k.transpose(-2, -1) / d\n"),
    Mutant("softmax_over_queries", "the softmax runs over the queries (dim -2); each query's weights over the keys "
           "(the last dimension) must sum to 1", FILE, SOFTMAX, SOFTMAX.replace("dim=-1", "dim=-2")),
    Mutant("causal_hides_the_diagonal", "the causal mask hides each query's own position too: query i sees keys "
           "j <= i, itself included", FILE, FUTURE, FUTURE.replace(".triu(1)", ".triu(0)")),
    Mutant("causal_hides_the_past", "the causal mask is the wrong way round: it must hide the future keys (j > i), "
           "not the past ones", FILE, FUTURE, FUTURE.replace(".triu(1)", ".tril(-1)")),
    Mutant("padding_ignored", "the key padding mask is not applied: a padded key must get zero weight (its score "
           "-inf before the softmax)", FILE, PADDING, "        pass\n"),
    Mutant("padding_inverted", "the padding mask is read the wrong way round: 1 (nonzero) marks padding, the keys "
           "to ignore", FILE, PADDING, PADDING.replace("key_padding_mask.bool()", "~key_padding_mask.bool()")),
    Mutant("heads_interleaved", "the heads take every H-th channel; each head owns a contiguous block of "
           "d_model / n_heads channels", FILE,
           SPLIT + "\n        q = split_heads(self.q_proj(q), Lq)\n",
           "            return x.view(B, L, Dh, H).permute(0, 3, 1, 2).reshape(B * H, L, Dh)\n"
           "\n        q = split_heads(self.q_proj(q), Lq)\n"),
    Mutant("mask_repeated_head_major", "the padding mask is repeated head-major (mask.repeat(H, 1)) while the heads "
           "are batch-major: use repeat_interleave(H, dim=0) so each head gets its own sequence's mask", FILE,
           "            key_padding_mask = key_padding_mask.repeat_interleave(H, dim=0)  # [B*H, Lk]\n",
           "            key_padding_mask = key_padding_mask.repeat(H, 1)\n"),
    Mutant("no_output_projection", "the heads are concatenated but not projected: apply o_proj to the result",
           FILE, "        return self.o_proj(out)\n", "        return out\n"),
    Mutant("layer_norm_on_the_sublayer", "LayerNorm is applied to the attention output before the residual; this "
           "layer is post-LN: LayerNorm(x + Dropout(attention))", FILE, SELF_LN,
           "        x = x + self.self_attn_drop(self.self_attn_ln(attn))\n"),
    Mutant("no_ffn_residual", "the feed-forward block has no residual: x = LayerNorm(x + Dropout(fc2(relu(fc1(x)))))",
           FILE, FFN_LN, "        x = self.ffn_ln(self.ffn_drop(ffn))\n"),
    Mutant("decoder_not_causal", "the decoder's self-attention is not causal: a target token must not see the ones "
           "after it (causal=True in the decoder)", FILE,
           "            attn = self.self_attn(x, x, x, padding_mask, causal=self.is_decoder)\n",
           "            attn = self.self_attn(x, x, x, padding_mask)\n"),
    Mutant("cross_attention_unmasked", "the cross-attention ignores the encoder's padding: pass encoder_padding_mask",
           FILE, "            attn = self.cross_attn(x, encoder_out, encoder_out, encoder_padding_mask)\n",
           "            attn = self.cross_attn(x, encoder_out, encoder_out)\n"),
    Mutant("cross_attention_with_decoder_mask", "the cross-attention masks the encoder's tokens with the "
           "decoder's padding mask: its keys are the encoder's, so pass encoder_padding_mask", FILE,
           "            attn = self.cross_attn(x, encoder_out, encoder_out, encoder_padding_mask)\n",
           "            attn = self.cross_attn(x, encoder_out, encoder_out, padding_mask)\n"),
    Mutant("pre_ln_feed_forward", "the feed-forward normalises its input first (pre-LN); the course's layer is "
           "post-LN: x = LayerNorm(x + Dropout(fc2(relu(fc1(x)))))", FILE,
           "        ffn = self.fc2(F.relu(self.fc1(x)))\n" + FFN_LN,
           "        ffn = self.fc2(F.relu(self.fc1(self.ffn_ln(x))))\n        x = x + self.ffn_drop(ffn)\n"),
    Mutant("dropout_in_eval", "dropout is applied in eval mode too: use the module (self.ffn_drop) or "
           "F.dropout(..., training=self.training), which model.eval() turns off", FILE, FFN_LN,
           "        x = self.ffn_ln(x + F.dropout(ffn, self.ffn_drop.p, training=True))\n"),
    Mutant("gelu_feed_forward", "the feed-forward uses GELU; the course's layer uses ReLU", FILE,
           "        ffn = self.fc2(F.relu(self.fc1(x)))\n", "        ffn = self.fc2(F.gelu(self.fc1(x)))\n"),
    Mutant("positions_from_one", "positions start at 1; they are 0, 1, ..., L-1", FILE, POSITIONS,
           "        return torch.arange(1, L + 1, dtype=input_ids.dtype, device=input_ids.device).expand(B, L)\n"
           + EMBED),
]

VARIANTS = [
    Mutant("masked_fill_with_large_negative", "", FILE, PADDING,
           "        scores = scores.masked_fill(key_padding_mask.bool()[:, None, :], -1e30)\n"),
    # the course's own notebook adds a float mask of -inf above the diagonal
    Mutant("additive_causal_mask", "", FILE,
           FUTURE + "        scores = scores.masked_fill(future, float(\"-inf\"))\n",
           "        future = torch.full((Lq, Lk), float(\"-inf\"), dtype=scores.dtype, device=q.device).triu(1)\n"
           "        scores = scores + future\n"),
    Mutant("einsum_scores", "", FILE, SCORES,
           "    scores = torch.einsum('nqd,nkd->nqk', q, k) / d ** 0.5\n"),
    Mutant("heads_with_einops", "", FILE, SPLIT,
           "            import einops\n"
           "            return einops.rearrange(x, 'b l (h d) -> (b h) l d', h=H)\n"),
    Mutant("positions_by_cumsum", "", FILE, POSITIONS,
           "        return (torch.ones_like(input_ids).cumsum(dim=1) - 1).to(input_ids.dtype)\n" + EMBED),
]
