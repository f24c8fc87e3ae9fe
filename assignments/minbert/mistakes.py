"""Known mistakes of the minbert homework (each must lose points) and accepted variants (each
must keep full marks), as patches of the reference files. `dlgrade verify minbert` checks both.

The dropout mistakes come from public student submissions: about 4 in 10 leave out dropout on
the attention probabilities, which the course's own checks (dropout off) cannot see.
"""
from grader.mutants import Mutant

ADD_NORM = ("        sublayer_out = dense_layer(output)\n"
            "        sublayer_out = dropout(sublayer_out)\n"
            "        return ln_layer(input + sublayer_out)\n")
DECAY = ("                if weight_decay > 0.0:\n"
         "                    p.add_(p, alpha=-lr * weight_decay)\n")
UPDATE = "                p.addcdiv_(exp_avg, denom, value=-step_size)\n"

MUTANTS = [
    # ---- attention
    Mutant("no_scaling", "attention scores not divided by sqrt(head_size)", "bert.py",
           "        scores = scores / math.sqrt(self.attention_head_size)\n", ""),
    Mutant("softmax_wrong_axis", "softmax over the queries (dim=-2) instead of the keys (dim=-1)", "bert.py",
           "probs = F.softmax(scores, dim=-1)", "probs = F.softmax(scores, dim=-2)"),
    Mutant("mask_ignored", "the attention mask is not added to the scores: padding tokens get attention", "bert.py",
           "        scores = scores + attention_mask\n", ""),
    Mutant("mask_sign_flipped", "the additive mask is subtracted: padding gets +10000 instead of -10000", "bert.py",
           "scores = scores + attention_mask", "scores = scores - attention_mask"),
    Mutant("heads_merged_without_transpose", "heads merged by reshaping [bs, heads, seq, head_size] directly: "
           "transpose to [bs, seq, heads, head_size] before the reshape", "bert.py",
           "        context = context.transpose(1, 2)\n", ""),
    Mutant("no_attention_dropout", "dropout missing on the attention probabilities", "bert.py",
           "        probs = self.dropout(probs)\n", ""),
    # ---- layer
    Mutant("pre_layer_norm", "LayerNorm applied to the sublayer output before the residual sum: BERT is "
           "post-LN, LayerNorm(input + dropout(dense(output)))", "bert.py",
           ADD_NORM, "        sublayer_out = dense_layer(output)\n"
                     "        sublayer_out = dropout(sublayer_out)\n"
                     "        return input + ln_layer(sublayer_out)\n"),
    Mutant("dropout_after_layer_norm", "dropout applied after LayerNorm instead of to the sublayer output "
           "before the residual sum", "bert.py",
           ADD_NORM, "        sublayer_out = dense_layer(output)\n"
                     "        return dropout(ln_layer(input + sublayer_out))\n"),
    Mutant("no_residual", "the residual connection is missing: LayerNorm(dropout(dense(output))) without + input",
           "bert.py", "return ln_layer(input + sublayer_out)", "return ln_layer(sublayer_out)"),
    Mutant("gelu_tanh_approximation", "GELU with the tanh approximation: BERT's 'gelu' is the exact erf form",
           "bert.py", "self.interm_af = F.gelu ", "self.interm_af = lambda x: F.gelu(x, approximate='tanh') "),
    # ---- embeddings and pooler
    Mutant("no_token_type_embedding", "token-type embeddings are not added (all ids are 0, but the embedding of "
           "type 0 is not zero)", "bert.py", "        embeds = embeds + tk_type_embeds\n", ""),
    Mutant("no_position_embedding", "position embeddings are not added", "bert.py",
           "        embeds = embeds + pos_embeds\n", ""),
    Mutant("embedding_dropout_twice", "the embedding dropout is applied twice", "bert.py",
           "embeds = self.embed_dropout(embeds)", "embeds = self.embed_dropout(self.embed_dropout(embeds))"),
    Mutant("pooler_without_tanh", "the pooler misses its tanh: pooler_output = tanh(dense(hidden[:, 0]))", "bert.py",
           "        first_tk = self.pooler_af(first_tk)\n", ""),
    # ---- classifier
    Mutant("classifier_returns_logits", "the classifier returns logits; F.nll_loss expects log-probabilities "
           "(return F.log_softmax(logits, dim=-1))", "classifier.py",
           "return F.log_softmax(logits, dim=-1)", "return logits"),
    Mutant("classifier_returns_probabilities", "the classifier returns probabilities (softmax); F.nll_loss "
           "expects log-probabilities", "classifier.py",
           "return F.log_softmax(logits, dim=-1)", "return F.softmax(logits, dim=-1)"),
    Mutant("pretrain_does_not_freeze", "option 'pretrain' must freeze BERT (requires_grad = False on its "
           "parameters) and train only the head", "classifier.py",
           'param.requires_grad = config.option == "finetune"', "param.requires_grad = True"),
    # ---- AdamW
    Mutant("coupled_weight_decay", "weight decay added to the gradient (L2, as in Adam) instead of decoupled: "
           "AdamW shrinks the weights directly, p -= lr * weight_decay * p, after the update", "optimizer.py",
           "                grad = p.grad\n",
           "                grad = p.grad + group['weight_decay'] * p\n"),
    Mutant("no_bias_correction", "bias correction missing: step size lr * sqrt(1 - beta2^t) / (1 - beta1^t)",
           "optimizer.py", "                if group[\"correct_bias\"]:\n", "                if False:\n"),
    Mutant("eps_inside_sqrt", "eps added inside the square root: use sqrt(v) + eps", "optimizer.py",
           "denom = exp_avg_sq.sqrt().add_(eps)", "denom = exp_avg_sq.add(eps).sqrt()"),
    Mutant("decay_scaled_by_step_size", "weight decay scaled by the bias-corrected step size; the course scales "
           "it by lr: p -= lr * weight_decay * p", "optimizer.py",
           "p.add_(p, alpha=-lr * weight_decay)", "p.add_(p, alpha=-step_size * weight_decay)"),
    Mutant("decay_factor_rounded_to_float32",
           "algebraically right, but p.mul_(1 - lr * weight_decay) rounds the factor 1 - 1e-7 to float32 "
           "(1 - 1.19e-7), which over the course's 1000 steps misses optimizer_test.npy by about 1.8e-5; the "
           "course's check rejects it. Compute lr * weight_decay in double precision: "
           "p.add_(p, alpha=-lr * weight_decay)", "optimizer.py",
           "p.add_(p, alpha=-lr * weight_decay)", "p.mul_(1 - lr * weight_decay)"),
]

# Right answers written differently: `dlgrade verify` requires full marks for each.
VARIANTS = [
    Mutant("masked_fill_mask", "padding masked with masked_fill instead of adding the mask", "bert.py",
           "scores = scores + attention_mask", "scores = scores.masked_fill(attention_mask < 0, -1e9)"),
    Mutant("einsum_scores", "scores by einsum", "bert.py",
           "scores = query @ key.transpose(-2, -1)", 'scores = torch.einsum("bhid,bhjd->bhij", query, key)'),
    Mutant("permute_reshape_heads", "heads merged by permute + reshape", "bert.py",
           "context = context.transpose(1, 2)", "context = context.permute(0, 2, 1, 3)"),
    Mutant("einops_heads", "heads merged by einops.rearrange", "bert.py",
           "        context = context.transpose(1, 2)\n        context = context.reshape(bs, seq_len, self.all_head_size)\n",
           "        import einops\n        context = einops.rearrange(context, 'b h s d -> b s (h d)')\n"),
    Mutant("decay_before_update", "decoupled decay applied before the Adam update (torch's order)", "optimizer.py",
           UPDATE, DECAY + UPDATE + "                weight_decay = 0.0  # already applied above\n"),
    Mutant("long_form_bias_correction", "bias correction written with m_hat and v_hat", "optimizer.py",
           "                p.addcdiv_(exp_avg, denom, value=-step_size)\n",
           "                if group[\"correct_bias\"]:\n"
           "                    m_hat = exp_avg / (1.0 - beta1 ** t)\n"
           "                    v_hat = exp_avg_sq / (1.0 - beta2 ** t)\n"
           "                    p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)\n"
           "                else:\n"
           "                    p.addcdiv_(exp_avg, denom, value=-step_size)\n"),
]
