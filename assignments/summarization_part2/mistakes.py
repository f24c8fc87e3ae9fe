"""Known mistakes in the summarization homework's part II (cached decoding), as patches of the
reference (`reference/seq2seq/transformer.py`, the student's `summarization.py`), and right
answers written differently, which must keep full marks."""
from grader.mutants import Mutant

FILE = "summarization.py"

CACHE = "            kv = torch.cat([past_kv, x], dim=1)\n"
CACHED_ATTENTION = "            attn = self.self_attn(x, kv, kv)\n"
RETURN = "        if use_cache:\n            return x, kv\n        return x\n"
OFFSET = "            positions = positions + past_key_values[0].size(1)  # continue after the cache\n"
LAYERS = "        for layer, past_kv in zip(self.layers, past_key_values):\n"
STACK_RETURN = "        return state, padding_mask, (new_key_values if use_cache else None)\n"
FIRST_STEP = ("        if past_kv is None:\n            kv = x\n"
              "            attn = self.self_attn(x, x, x, padding_mask, causal=self.is_decoder)\n")

MUTANTS = [
    Mutant("new_token_cached_twice", "the new token is appended to the cache twice: kv = cat(past_kv, x) holds "
           "each earlier token once and the new one once", FILE, CACHE,
           "            kv = torch.cat([past_kv, x, x], dim=1)\n"),
    Mutant("cache_ignored", "with past_kv the new token attends only to itself: its self-attention must run over "
           "kv = cat(past_kv, x), every token so far", FILE, CACHE, "            kv = x\n"),
    Mutant("causal_mask_with_cache", "with the cache the new token is the last query: a causal mask (top-left "
           "aligned) lets it see only the first key; use no mask, every cached token is in its past", FILE,
           CACHED_ATTENTION, "            attn = self.self_attn(x, kv, kv, causal=True)\n"),
    Mutant("cache_holds_outputs", "the cache holds the layer's outputs; it must hold its inputs h_1..h_i (keys "
           "and values are projected from them)", FILE, RETURN,
           "        if use_cache:\n            return x, (x if past_kv is None else torch.cat([past_kv, x], dim=1))\n"
           "        return x\n"),
    Mutant("prefix_recomputed", "every step attends from all cached tokens again and keeps the last row: right "
           "outputs, but each step's work grows with the square of the cached length; the new token alone is the "
           "query", FILE, CACHED_ATTENTION,
           "            attn = self.self_attn(kv, kv, kv, causal=True)[:, -1:]\n"),
    Mutant("positions_not_offset", "with a cache, positions restart at 0 for every new token: add the cached "
           "length past_key_values[0].size(1) to them", FILE, OFFSET, "            pass\n"),
    Mutant("positions_offset_by_one_more", "positions continue one too far: the first new token after t cached "
           "ones is at position t, not t + 1", FILE, OFFSET,
           "            positions = positions + past_key_values[0].size(1) + 1\n"),
    Mutant("first_layers_cache_everywhere", "every layer gets the first layer's cache: layer i needs "
           "past_key_values[i]", FILE, LAYERS,
           "        for layer, past_kv in zip(self.layers, [past_key_values[0]] * len(self.layers)):\n"),
    Mutant("old_cache_returned", "the stack returns the cache it was given: return the layers' new caches",
           FILE, STACK_RETURN, "        return state, padding_mask, (past_key_values if use_cache else None)\n"),
    Mutant("prompt_step_not_causal", "the first call with use_cache (a prompt of several tokens, no past_kv) "
           "attends without the causal mask: it must stay causal", FILE, FIRST_STEP,
           FIRST_STEP.replace("causal=self.is_decoder", "causal=self.is_decoder and not use_cache")),
]

VARIANTS = [
    Mutant("cache_by_new_list", "", FILE, CACHE, "            kv = torch.cat((past_kv, x), 1).contiguous()\n"),
    Mutant("cached_attention_with_empty_mask", "", FILE, CACHED_ATTENTION,
           "            attn = self.self_attn(x, kv, kv, torch.zeros(kv.shape[:2], dtype=torch.uint8, "
           "device=kv.device))\n"),
    Mutant("offset_from_the_last_cache", "", FILE, OFFSET,
           "            positions = positions + past_key_values[-1].shape[1]\n"),
]
