"""Staff training check of the summarization Transformer reference (reference/seq2seq/transformer.py):
does it learn?

Part II's model, `Seq2SeqTransformer`, trained with teacher forcing (decoder input = the labels
shifted right, eos as the start token, the mean cross-entropy over labels != -100), then decoded
greedily with `greedy_generate`, once with part II's cache and once without it. On a held-out test
split the script reports

* the teacher-forced token accuracy (argmax of the logits against the labels != -100, summed over
  all test tokens, eos included) and the test loss;
* the exact-match rate of greedy generation: the generated tokens up to (excluding) the first eos
  equal the reference summary, for the cached and for the uncached decoder;
* whether the cached and the uncached decoder produced the same tokens (per example, and for the
  whole split), and the wall time of each;
* the same numbers for the model before training, as a yardstick, and the training loss curve
  (its first and last windows, 20 windows in the JSON).

Training: AdamW (betas 0.9, 0.98, weight decay 0.01), a linear warm-up of the learning rate then a
linear decay to 0, gradients clipped at norm 1, residual dropout as configured.

Data:

* default: a synthetic "summarise" task, offline and drawn from the seed. Vocabulary of 40 ids:
  0 pad, 1 eos, 2-39 words, of which 2-13 are "content" words and 14-39 "filler". A source is 8 to
  24 words drawn uniformly (so about a third are content words); its summary is the source's
  content words in source order, at most the first 10. Labels are the summary followed by eos, then
  -100; sources are right-padded with 0. The rule needs attention to the source: the decoder must
  find, position by position, the next content word after the one it wrote last, repeats included.
  The test split (1000 examples) is drawn once from its own generator; every training batch is
  fresh, from another generator, so the model never sees a batch twice (a test source recurring
  among the training batches is possible but astronomically rare: 38^8 sources of the shortest
  length alone).
* `--data-dir DIR --tokenizer-dir TOK` (together): XSum, as the course's part II trains on.
  DIR holds `train.jsonl` and `validation.jsonl`, one JSON object per line with "document" and
  "summary"; TOK is a locally saved Hugging Face tokenizer (t5-small's: 32100 ids, pad 0, eos 1;
  `AutoTokenizer.from_pretrained("t5-small").save_pretrained(TOK)` on a machine with network),
  loaded with `local_files_only=True`; transformers is imported only then. Documents are truncated
  to 512 tokens and summaries to 64 (`--max-source-len`, `--max-target-len`; the tokenizer's eos
  kept last), `--max-train N` draws N training documents with the seed, and the test split is
  `--test-size` documents (default 1000) of validation.jsonl drawn with the seed. Exact match is
  about 0 on XSum for any model; the token accuracy and the loss are the numbers to watch there.

Settings (`--setting`; sizes, steps, learning rate and the seed can be overridden):

* `cpu` (default): 2 encoder + 2 decoder layers, d_model 64, 4 heads of d_kv 16, d_ff 256,
  dropout 0.1, the synthetic task's 40 ids, batch 64, 1500 steps of AdamW at peak lr 1e-3 after a
  200-step warm-up. One torch thread: on 2 cores shared with other jobs, 200 steps took 18 s
  with one thread and 32 s with two.
* `course`: the notebook's model, `TransformerConfig()`'s defaults: 6 + 6 layers, d_model 512,
  8 heads of d_kv 64, d_ff 2048, dropout 0.1, t5-small's 32100 ids (pad 0, eos 1), 1024
  positions. Batch 32, 20000 steps, lr 3e-4 after a 1000-step warm-up are our choice, not the
  notebook's, and have not been run here (no GPU, no XSum). Meant for XSum on a GPU
  (`--device cuda`).

What to expect (cpu setting, synthetic task, seed 0, measured on a shared 2-core CPU with other
jobs running: 112 s for `make train-summarization`, of which 105 s training; 301,736 parameters):

                                       untrained   trained
    token accuracy (teacher forcing)     0.057      0.999
    test loss                            3.729      0.005
    exact match, greedy with cache       0.007      0.997
    exact match, greedy without cache    0.007      0.997
    cached = uncached tokens             1.000      1.000   (every test example, before and after)
    generation with / without cache      0.23 / 0.22 s   0.84 / 1.18 s   (1000 examples)
    training loss                        3.255 (first 75 steps) -> 0.019 (last 75 steps)

Seeds 1 and 2 (run side by side, quiet: 124 and 125 s): token accuracy 0.999 and 1.000, exact match
0.995 and 0.999 with and without the cache, generations identical, training loss 3.29 -> 0.018 and
3.24 -> 0.019; untrained exact match 0.009 and 0.010. The untrained model's exact match is the
share of test sources without a content word (0.7 % for seed 0): it writes eos at once, so it gets
exactly the empty summaries right; that and its loss of about log(40) = 3.69 are the yardsticks.
With 300 steps the same model reaches 0.54 exact match, with 2500 steps 1.000. Cached decoding of
11 tokens at most is only modestly faster than the uncached decoder here (0.84 against 1.18 s);
the uncached decoder's cost grows with the square of the summary length, so the gap should be
wider on XSum's 64 tokens (not measured). The untrained model's generation is fast because every
example stops at its first token.

    python -m reference.seq2seq.train                                # cpu setting, synthetic task
    python -m reference.seq2seq.train --out runs/summarization/train.json
    python -m reference.seq2seq.train --steps 1000 --seed 1 --quiet
    python -m reference.seq2seq.train --setting course --data-dir /data/xsum --tokenizer-dir /data/t5-small \\
        --device cuda --out runs/summarization/xsum.json
    python -m reference.seq2seq.train --help
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from grader.seeding import seed_everything
from reference.seq2seq.transformer import Seq2SeqTransformer, TransformerConfig, greedy_generate
from reference.training import preset_settings, torch_threads, write_summary

PAD_ID = 0
EOS_ID = 1
IGNORE_INDEX = -100                 # label padding, as HF and the course use it

# The synthetic task: ids 0 pad, 1 eos, then the words; the first N_CONTENT words are content.
SYNTHETIC_VOCAB = 40
FIRST_WORD = 2
N_CONTENT = 12
CONTENT_IDS = range(FIRST_WORD, FIRST_WORD + N_CONTENT)      # 2..13; 14..39 are filler
MIN_SOURCE_LEN = 8
MAX_SOURCE_LEN = 24
MAX_SUMMARY_LEN = 10

XSUM_FILES = {"train": "train.jsonl", "test": "validation.jsonl"}
LOSS_WINDOWS = 20                   # the loss curve in the JSON: means over this many windows of steps
N_SAMPLES = 3                       # test examples whose generations the JSON shows

_COURSE_MODEL = TransformerConfig()
# The course's sizes; anything not named here keeps the cpu default of `Settings`.
COURSE = {"vocab_size": _COURSE_MODEL.vocab_size, "n_positions": _COURSE_MODEL.n_positions,
          "encoder_layers": _COURSE_MODEL.num_encoder_layers, "decoder_layers": _COURSE_MODEL.num_decoder_layers,
          "d_model": _COURSE_MODEL.d_model, "d_ff": _COURSE_MODEL.d_ff, "d_kv": _COURSE_MODEL.d_kv,
          "dropout": _COURSE_MODEL.dropout_rate, "batch_size": 32, "steps": 20000, "lr": 3e-4,
          "warmup_steps": 1000}
PRESETS = {"cpu": {}, "course": COURSE}


@dataclass
class Settings:
    setting: str = "cpu"
    data_dir: str | None = None         # XSum jsonl folder; None: the synthetic task
    tokenizer_dir: str | None = None    # a saved HF tokenizer, required with data_dir
    max_source_len: int = 512           # XSum: tokens kept of a document (its eos included)
    max_target_len: int = 64            # XSum: tokens kept of a summary (its eos included)
    max_train: int | None = None        # XSum: training documents drawn with the seed; None: all
    test_size: int = 1000               # synthetic: test examples drawn; XSum: validation documents drawn
    vocab_size: int | None = None       # None: the data's (40 synthetic, the tokenizer's for XSum)
    n_positions: int = 1024             # position table size, TransformerConfig's default
    encoder_layers: int = 2
    decoder_layers: int = 2
    d_model: int = 64
    d_kv: int = 16                      # per-head width: d_model // d_kv heads
    d_ff: int = 256
    dropout: float = 0.1
    batch_size: int = 64
    steps: int = 1500
    lr: float = 1e-3
    warmup_steps: int = 200             # linear warm-up to lr, then linear decay to 0 at the last step
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    eval_batch_size: int = 250
    seed: int = 0
    device: str | None = None           # None: cuda if available, else cpu
    threads: int | None = 1             # torch.set_num_threads, None: torch's
    out: str | None = None              # JSON summary path; None: no file
    quiet: bool = False


def settings_for(setting: str = "cpu", **overrides) -> Settings:
    """The named setting's sizes, with `overrides` (field name -> value) on top."""
    return preset_settings(Settings, PRESETS, setting, overrides)


@dataclass
class Summary:
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)          # name, sizes, vocabulary, lengths
    token_acc: float = 0.0                            # after training, teacher-forced, test split
    test_loss: float = 0.0
    exact_match: float = 0.0                          # greedy generation with the cache
    exact_match_uncached: float = 0.0                 # greedy generation without it
    generations_identical: bool = False               # cached and uncached: the same tokens, every example
    identical_rate: float = 0.0                       # the share of examples where they are the same
    generate_cached_s: float = 0.0                    # wall time of greedy generation over the test split
    generate_uncached_s: float = 0.0
    untrained: dict = field(default_factory=dict)     # the same metrics before training
    loss_first: float = 0.0                           # mean training loss of the first window of steps
    loss_last: float = 0.0                            # ... and of the last
    loss_curve: list = field(default_factory=list)    # mean training loss per window (LOSS_WINDOWS)
    losses: list = field(default_factory=list)        # per step; not written to the JSON
    samples: list = field(default_factory=list)       # a few test examples: source, summary, generated
    train_time_s: float = 0.0
    wall_time_s: float = 0.0


# ----------------------------------------------------------------------------- data

@dataclass
class Data:
    name: str                                         # "synthetic" or "xsum"
    vocab_size: int                                   # ids the data uses: 0 .. vocab_size - 1
    pad_id: int
    eos_id: int
    test: tuple[torch.Tensor, torch.Tensor]           # (input_ids [N, S] right-padded, labels [N, T] -100-padded)
    next_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]]   # batch size -> a training batch
    n_train: int | None                               # None: a fresh stream
    max_new_tokens: int                               # generation length: the longest label
    decode: Callable[[list[int]], str | list[int]] = list


def synthetic_examples(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` examples of the synthetic task: (input_ids [n, 24] right-padded with 0, labels [n, 11]).

    A source is 8 to 24 words drawn uniformly from ids 2..39; its labels are its content words
    (ids 2..13) in source order, at most 10, then eos, then -100."""
    lengths = torch.randint(MIN_SOURCE_LEN, MAX_SOURCE_LEN + 1, (n,), generator=generator)
    words = torch.randint(FIRST_WORD, SYNTHETIC_VOCAB, (n, MAX_SOURCE_LEN), generator=generator)
    real = torch.arange(MAX_SOURCE_LEN)[None, :] < lengths[:, None]
    input_ids = words.masked_fill(~real, PAD_ID)
    content = real & (input_ids >= CONTENT_IDS.start) & (input_ids < CONTENT_IDS.stop)
    # A stable sort of "not content" brings each row's content words to the front, in source order.
    order = torch.argsort((~content).to(torch.int8), dim=1, stable=True)
    front = input_ids.gather(1, order)[:, :MAX_SUMMARY_LEN]                      # [n, 10]
    front = torch.cat([front, torch.zeros(n, 1, dtype=torch.long)], dim=1)      # [n, 11]
    k = content.sum(dim=1).clamp(max=MAX_SUMMARY_LEN)                            # summary lengths
    position = torch.arange(MAX_SUMMARY_LEN + 1)[None, :]
    labels = torch.where(position < k[:, None], front, torch.full_like(front, IGNORE_INDEX))
    labels = labels.masked_fill(position == k[:, None], EOS_ID)
    return input_ids, labels


def synthetic_summary(source: list[int]) -> list[int]:
    """The rule, one example at a time: the content words of `source` (pad ids dropped), in order, at most 10."""
    return [w for w in source if w in CONTENT_IDS][:MAX_SUMMARY_LEN]


def synthetic_data(settings: Settings) -> Data:
    """The test split drawn from generator 2 * seed, the training stream from generator 2 * seed + 1."""
    test = synthetic_examples(settings.test_size, torch.Generator().manual_seed(2 * settings.seed))
    stream = torch.Generator().manual_seed(2 * settings.seed + 1)
    return Data(name="synthetic", vocab_size=SYNTHETIC_VOCAB, pad_id=PAD_ID, eos_id=EOS_ID, test=test,
                next_batch=lambda batch_size: synthetic_examples(batch_size, stream), n_train=None,
                max_new_tokens=MAX_SUMMARY_LEN + 1)


def read_jsonl(path: str | Path, keys: tuple[str, ...] = ("document", "summary")) -> list[dict]:
    """The JSON objects of a .jsonl file, one a line (blank lines skipped); each must hold `keys` as strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {number}: not JSON ({e})") from None
            if not isinstance(record, dict) or any(not isinstance(record.get(k), str) for k in keys):
                raise ValueError(f"{path}, line {number}: expected an object with string fields "
                                 f"{', '.join(map(repr, keys))}")
            records.append(record)
    return records


def check_xsum_dirs(data_dir: str | Path, tokenizer_dir: str | Path) -> None:
    """FileNotFoundError naming whatever is missing: the folders, the two jsonl files, the tokenizer's files."""
    data_dir, tokenizer_dir = Path(data_dir), Path(tokenizer_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir} is not a folder")
    missing = [name for name in XSUM_FILES.values() if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"--data-dir {data_dir} lacks {' and '.join(missing)} (XSum as jsonl: one "
                                f"{{\"document\": ..., \"summary\": ...}} object per line)")
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"--tokenizer-dir {tokenizer_dir} is not a folder")
    if not any((tokenizer_dir / name).is_file() for name in ("tokenizer_config.json", "tokenizer.json")):
        raise FileNotFoundError(f"--tokenizer-dir {tokenizer_dir} holds no saved tokenizer (no tokenizer_config.json "
                                f"or tokenizer.json); save one with AutoTokenizer.from_pretrained('t5-small')"
                                f".save_pretrained(DIR) where there is network")


def load_tokenizer(tokenizer_dir: str | Path):
    """A Hugging Face tokenizer saved in `tokenizer_dir`, never downloaded. transformers is imported here only."""
    try:
        from transformers import AutoTokenizer
    except ImportError as e:
        raise ImportError("--tokenizer-dir needs the transformers package (pip install transformers)") from e
    return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)


def encode_pairs(tokenizer, records: list[dict], max_source_len: int,
                 max_target_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids [N, S] right-padded with the tokenizer's pad id, labels [N, T] padded with -100), S and T the
    longest kept lengths. Texts are truncated to max_source_len / max_target_len tokens; each keeps the
    tokenizer's eos last (T5's tokenizer appends it; one is added if a tokenizer does not)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id

    def ids(texts: list[str], max_len: int) -> list[list[int]]:
        out = []
        for row in tokenizer(texts, max_length=max_len, truncation=True)["input_ids"]:
            row = list(row)
            if not row or row[-1] != eos:
                row = row[:max_len - 1] + [eos]
            out.append(row)
        return out

    def pad_rows(rows: list[list[int]], value: int) -> torch.Tensor:
        tensor = torch.full((len(rows), max(map(len, rows), default=1)), value, dtype=torch.long)
        for i, row in enumerate(rows):
            tensor[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return tensor

    sources = ids([r["document"] for r in records], max_source_len)
    summaries = ids([r["summary"] for r in records], max_target_len)
    return pad_rows(sources, pad), pad_rows(summaries, IGNORE_INDEX)


def draw(records: list, n: int | None, generator: torch.Generator) -> list:
    """`n` records drawn without replacement, in file order; all of them if n is None or too large."""
    if n is None or n >= len(records):
        return records
    return [records[i] for i in torch.randperm(len(records), generator=generator)[:n].sort().values.tolist()]


def xsum_data(settings: Settings, tokenizer=None) -> Data:
    """XSum from `settings.data_dir`, tokenized with `tokenizer` (default: the one saved in tokenizer_dir).

    The training documents are visited in a fresh random order each epoch (generator 2 * seed + 1);
    the test documents are drawn from validation.jsonl with generator 2 * seed."""
    check_xsum_dirs(settings.data_dir, settings.tokenizer_dir)
    if tokenizer is None:
        tokenizer = load_tokenizer(settings.tokenizer_dir)
    directory = Path(settings.data_dir)
    train_records = draw(read_jsonl(directory / XSUM_FILES["train"]), settings.max_train,
                         torch.Generator().manual_seed(2 * settings.seed + 1))
    test_records = draw(read_jsonl(directory / XSUM_FILES["test"]), settings.test_size,
                        torch.Generator().manual_seed(2 * settings.seed))
    if not train_records or not test_records:
        raise ValueError(f"{directory}: {XSUM_FILES['train']} and {XSUM_FILES['test']} must each hold a record")
    train_ids, train_labels = encode_pairs(tokenizer, train_records, settings.max_source_len, settings.max_target_len)
    test = encode_pairs(tokenizer, test_records, settings.max_source_len, settings.max_target_len)
    order = torch.Generator().manual_seed(2 * settings.seed + 1)
    queue: list[torch.Tensor] = []

    def next_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal queue
        while sum(map(len, queue)) < batch_size:   # another epoch in a fresh order; a batch may span two
            queue = queue + [torch.randperm(len(train_ids), generator=order)]
        idx = torch.cat(queue)
        queue = [idx[batch_size:]]
        return train_ids[idx[:batch_size]], train_labels[idx[:batch_size]]

    return Data(name="xsum", vocab_size=len(tokenizer), pad_id=tokenizer.pad_token_id,
                eos_id=tokenizer.eos_token_id, test=test, next_batch=next_batch, n_train=len(train_records),
                max_new_tokens=test[1].shape[1],
                decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True))


def load_data(settings: Settings, tokenizer=None) -> Data:
    return xsum_data(settings, tokenizer) if settings.data_dir else synthetic_data(settings)


def trim(input_ids: torch.Tensor, labels: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the columns that are padding in every row (right padding: a batch is as long as its longest)."""
    s = int((input_ids != pad_id).sum(dim=1).max().item()) if len(input_ids) else 0
    t = int((labels != IGNORE_INDEX).sum(dim=1).max().item()) if len(labels) else 0
    return input_ids[:, :max(s, 1)], labels[:, :max(t, 1)]


# ----------------------------------------------------------------------------- model

def model_config(settings: Settings, data: Data) -> TransformerConfig:
    return TransformerConfig(vocab_size=settings.vocab_size or data.vocab_size, pad_token_id=data.pad_id,
                             eos_token_id=data.eos_id, n_positions=settings.n_positions,
                             num_encoder_layers=settings.encoder_layers, num_decoder_layers=settings.decoder_layers,
                             d_model=settings.d_model, d_ff=settings.d_ff, d_kv=settings.d_kv,
                             dropout_rate=settings.dropout)


def check(settings: Settings) -> None:
    """ValueError for settings that cannot be run."""
    if settings.setting not in PRESETS:
        raise ValueError(f"setting must be one of {sorted(PRESETS)}, got {settings.setting!r}")
    if bool(settings.data_dir) != bool(settings.tokenizer_dir):
        raise ValueError("--data-dir and --tokenizer-dir go together: XSum needs both, the synthetic task neither")
    if settings.d_kv < 1 or settings.d_model < 1 or settings.d_model % settings.d_kv:
        raise ValueError(f"d_model {settings.d_model} must be a positive multiple of d_kv {settings.d_kv} "
                         f"(the number of heads is d_model // d_kv)")
    if min(settings.encoder_layers, settings.decoder_layers, settings.d_ff, settings.batch_size,
           settings.eval_batch_size, settings.test_size) < 1:
        raise ValueError("layers, d_ff, batch sizes and the test size must be >= 1")
    if settings.steps < 0 or settings.warmup_steps < 0:
        raise ValueError("steps and warm-up steps must be >= 0")
    if not settings.lr > 0 or settings.weight_decay < 0 or not settings.clip_norm > 0:
        raise ValueError("lr and clip_norm must be > 0, weight_decay >= 0")
    if not 0 <= settings.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {settings.dropout}")
    if settings.max_train is not None and settings.max_train < 1:
        raise ValueError("max_train must be >= 1 (or None: all)")
    if settings.max_source_len < 2 or settings.max_target_len < 2:
        raise ValueError("max_source_len and max_target_len must be >= 2 (a token and eos)")
    longest = (max(settings.max_source_len, settings.max_target_len) if settings.data_dir
               else max(MAX_SOURCE_LEN, MAX_SUMMARY_LEN + 1))
    if settings.n_positions < longest:
        raise ValueError(f"n_positions {settings.n_positions} is shorter than the longest sequence, {longest}")
    if settings.vocab_size is not None and not settings.data_dir and settings.vocab_size < SYNTHETIC_VOCAB:
        raise ValueError(f"vocab_size {settings.vocab_size} is smaller than the synthetic task's {SYNTHETIC_VOCAB}")


def learning_rate(step: int, settings: Settings) -> float:
    """The lr of step `step` (0-based): linear warm-up over warmup_steps, then linear decay to 0 at the end."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    remaining = settings.steps - settings.warmup_steps
    return settings.lr * max(0.0, 1 - (step - settings.warmup_steps) / remaining) if remaining > 0 else settings.lr


# ----------------------------------------------------------------------------- evaluation

def exact_matches(generated: torch.Tensor, labels: torch.Tensor, eos_id: int) -> list[bool]:
    """Per example: the generated tokens after the start token, up to (excluding) the first eos, are the
    summary (the labels before their eos). generated [N, 1 + n] from greedy_generate, labels [N, T]."""
    out = []
    for row, label in zip(generated[:, 1:].tolist(), labels.tolist()):
        words = row[:row.index(eos_id)] if eos_id in row else row
        summary = [t for t in label if t != IGNORE_INDEX]
        summary = summary[:summary.index(eos_id)] if eos_id in summary else summary
        out.append(words == summary)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(model: Seq2SeqTransformer, data: Data, settings: Settings, device: torch.device,
             n_samples: int = 0) -> dict:
    """Teacher-forced token accuracy and loss, and greedy generation with and without the cache, on the test split.

    Returns {token_acc, test_loss, exact_match, exact_match_uncached, generations_identical,
    identical_rate, generate_cached_s, generate_uncached_s} and, with n_samples, 'samples'."""
    was_training = model.training
    model.eval()
    input_ids, labels = data.test
    correct = total = 0
    loss_sum = 0.0
    generated = {True: [], False: []}
    seconds = {True: 0.0, False: 0.0}
    for start in range(0, len(input_ids), settings.eval_batch_size):
        ids, lab = trim(input_ids[start:start + settings.eval_batch_size],
                        labels[start:start + settings.eval_batch_size], data.pad_id)
        ids, lab = ids.to(device), lab.to(device)
        logits = model(input_ids=ids, labels=lab).logits                    # [b, T, V]
        kept = lab != IGNORE_INDEX
        correct += (logits.argmax(dim=-1)[kept] == lab[kept]).sum().item()
        total += kept.sum().item()
        loss_sum += F.cross_entropy(logits.flatten(0, 1).float(), lab.flatten(), ignore_index=IGNORE_INDEX,
                                    reduction="sum").item()
        for use_cache in (True, False):
            _sync(device)
            t = time.perf_counter()
            out = greedy_generate(model, ids, data.max_new_tokens, use_cache=use_cache)
            _sync(device)
            seconds[use_cache] += time.perf_counter() - t
            generated[use_cache].append(out.cpu())
    model.train(was_training)

    def stacked(outs: list[torch.Tensor]) -> torch.Tensor:    # batches stop at different lengths
        width = max(o.shape[1] for o in outs)
        return torch.cat([F.pad(o, (0, width - o.shape[1]), value=data.pad_id) for o in outs])

    cached, uncached = stacked(generated[True]), stacked(generated[False])
    width = max(cached.shape[1], uncached.shape[1])
    cached = F.pad(cached, (0, width - cached.shape[1]), value=data.pad_id)
    uncached = F.pad(uncached, (0, width - uncached.shape[1]), value=data.pad_id)
    same = (cached == uncached).all(dim=1)
    match, match_uncached = exact_matches(cached, labels, data.eos_id), exact_matches(uncached, labels, data.eos_id)
    result = {"token_acc": correct / total, "test_loss": loss_sum / total,
              "exact_match": sum(match) / len(match), "exact_match_uncached": sum(match_uncached) / len(match),
              "generations_identical": bool(same.all()), "identical_rate": same.float().mean().item(),
              "generate_cached_s": round(seconds[True], 3), "generate_uncached_s": round(seconds[False], 3)}
    if n_samples:
        result["samples"] = []
        for i in range(min(n_samples, len(input_ids))):
            row = cached[i, 1:].tolist()
            words = row[:row.index(data.eos_id)] if data.eos_id in row else row
            summary = [t for t in labels[i].tolist() if t not in (IGNORE_INDEX, data.eos_id)]
            source = [t for t in input_ids[i].tolist() if t != data.pad_id]
            result["samples"].append({"source": data.decode(source), "summary": data.decode(summary),
                                      "generated": data.decode(words), "exact": match[i]})
    return result


# ----------------------------------------------------------------------------- training

def train(settings: Settings, log=print, tokenizer=None) -> Summary:
    """Train, evaluate before and after; the summary, also written as JSON if `settings.out` is set.
    `tokenizer` stands in for the one in settings.tokenizer_dir (XSum only)."""
    with torch_threads(settings.threads):
        return _train(settings, log, tokenizer)


def _train(settings: Settings, log, tokenizer) -> Summary:
    started = time.perf_counter()
    check(settings)
    say = (lambda *_: None) if settings.quiet else log
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = load_data(settings, tokenizer)
    if settings.vocab_size is not None and settings.vocab_size < data.vocab_size:
        raise ValueError(f"vocab_size {settings.vocab_size} is smaller than the data's {data.vocab_size}")
    test_ids, test_labels = data.test
    summary_lengths = (test_labels != IGNORE_INDEX).sum(dim=1) - 1                  # eos not counted
    summary = Summary(settings={**asdict(settings), "device": str(device)},
                      data={"name": data.name, "train": data.n_train, "test": len(test_ids),
                            "vocab_size": data.vocab_size, "max_source_len": test_ids.shape[1],
                            "max_new_tokens": data.max_new_tokens,
                            "mean_source_len": (test_ids != data.pad_id).sum(dim=1).float().mean().item(),
                            "mean_summary_len": summary_lengths.float().mean().item()})
    train_what = "a fresh stream of training examples" if data.n_train is None else f"{data.n_train} training"
    say(f"{data.name}: {train_what} and {len(test_ids)} test examples, {settings.setting} setting, device {device}")

    seed_everything(settings.seed)
    model = Seq2SeqTransformer(model_config(settings, data)).to(device)
    say(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    summary.untrained = evaluate(model, data, settings, device)

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.98),
                                  weight_decay=settings.weight_decay)
    progress = tqdm(total=settings.steps, unit="step", disable=settings.quiet, dynamic_ncols=True, desc="train")
    t = time.perf_counter()
    model.train()
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        ids, labels = trim(*data.next_batch(settings.batch_size), data.pad_id)
        loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        optimizer.step()
        summary.losses.append(loss.item())
        progress.update()
        if step % 20 == 0:
            progress.set_postfix(loss=f"{summary.losses[-1]:.3f}", refresh=False)
    progress.close()
    summary.train_time_s = round(time.perf_counter() - t, 1)

    windows = [w for w in torch.tensor(summary.losses).tensor_split(min(LOSS_WINDOWS, len(summary.losses)))
               if len(w)] if summary.losses else []
    summary.loss_curve = [w.mean().item() for w in windows]
    summary.loss_first = summary.loss_curve[0] if windows else math.nan
    summary.loss_last = summary.loss_curve[-1] if windows else math.nan

    after = evaluate(model, data, settings, device, n_samples=N_SAMPLES)
    summary.samples = after.pop("samples")
    for key, value in after.items():
        setattr(summary, key, value)
    summary.wall_time_s = round(time.perf_counter() - started, 1)
    say(summary_table(summary))
    if settings.out:
        say(f"wrote {write_summary(summary, settings.out, leave_out=('losses',))}")
    return summary


def summary_table(summary: Summary) -> str:
    """Before and after training side by side, as a small text table."""
    header = ("test split", "untrained", "trained")
    u = summary.untrained
    rows = [("token accuracy (teacher forcing)", f"{u.get('token_acc', 0):.3f}", f"{summary.token_acc:.3f}"),
            ("test loss", f"{u.get('test_loss', 0):.3f}", f"{summary.test_loss:.3f}"),
            ("exact match, greedy with cache", f"{u.get('exact_match', 0):.3f}", f"{summary.exact_match:.3f}"),
            ("exact match, greedy without cache", f"{u.get('exact_match_uncached', 0):.3f}",
             f"{summary.exact_match_uncached:.3f}"),
            ("cached = uncached tokens (share)", f"{u.get('identical_rate', 0):.3f}", f"{summary.identical_rate:.3f}"),
            ("generation with cache (s)", f"{u.get('generate_cached_s', 0):.2f}", f"{summary.generate_cached_s:.2f}"),
            ("generation without cache (s)", f"{u.get('generate_uncached_s', 0):.2f}",
             f"{summary.generate_uncached_s:.2f}")]
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]

    def line(row):
        return "  ".join([row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])])

    lines = [line(header), "-" * len(line(header))] + [line(row) for row in rows]
    lines.append(f"training loss {summary.loss_first:.3f} (first {100 // LOSS_WINDOWS}% of the steps) -> "
                 f"{summary.loss_last:.3f} (last {100 // LOSS_WINDOWS}%)")
    lines.append(f"cached and uncached generations identical: {'yes' if summary.generations_identical else 'NO'} "
                 f"(trained), {'yes' if u.get('generations_identical') else 'no'} (untrained)")
    lines.append(f"{summary.wall_time_s:.0f} s in all ({summary.train_time_s:.0f} s training)")
    return "\n".join(lines)


def parse_args(argv=None) -> Settings:
    defaults = Settings()

    def preset_defaults(name: str) -> str:
        return f"cpu {getattr(defaults, name)}, course {COURSE.get(name, getattr(defaults, name))}"

    p = argparse.ArgumentParser(
        prog="python -m reference.seq2seq.train",
        description="Train the reference summarization Transformer (part II's Seq2SeqTransformer) and report, "
                    "before and after training, the test split's teacher-forced token accuracy and the exact "
                    "match of greedy generation with and without the cache. Data: a synthetic summarise task "
                    "(offline), or XSum jsonl files with --data-dir and --tokenizer-dir.",
        epilog="Sizes, steps and learning rates not given default to the chosen --setting's.")
    p.add_argument("--setting", choices=sorted(PRESETS), default="cpu",
                   help="cpu: small model, a few minutes on 2 cores; course: the notebook's model (default cpu)")
    p.add_argument("--data-dir", metavar="DIR", help="XSum as train.jsonl and validation.jsonl; needs --tokenizer-dir")
    p.add_argument("--tokenizer-dir", metavar="DIR", help="a saved Hugging Face tokenizer (t5-small); never downloaded")
    p.add_argument("--max-source-len", type=int, metavar="N",
                   help=f"XSum: document tokens kept (default {defaults.max_source_len})")
    p.add_argument("--max-target-len", type=int, metavar="N",
                   help=f"XSum: summary tokens kept (default {defaults.max_target_len})")
    p.add_argument("--max-train", type=int, metavar="N",
                   help="XSum: training documents drawn with the seed (default all)")
    p.add_argument("--test-size", type=int, metavar="N",
                   help=f"test examples (synthetic) or validation documents (XSum) (default {defaults.test_size})")
    p.add_argument("--vocab-size", type=int, metavar="N",
                   help=f"model vocabulary (cpu: the data's, 40 synthetic; course {COURSE['vocab_size']})")
    p.add_argument("--layers", type=int, metavar="N", help="encoder and decoder layers both")
    for name, help_ in (("encoder_layers", "encoder layers"), ("decoder_layers", "decoder layers"),
                        ("d_model", "model width"), ("d_kv", "per-head width; d_model // d_kv heads"),
                        ("d_ff", "feed-forward width"), ("n_positions", "position table size"),
                        ("batch_size", "training batch size"), ("steps", "training steps"),
                        ("warmup_steps", "linear warm-up steps")):
        p.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                       help=f"{help_} ({preset_defaults(name)})")
    p.add_argument("--dropout", type=float, metavar="P", help=f"residual dropout ({preset_defaults('dropout')})")
    p.add_argument("--lr", type=float, metavar="LR", help=f"peak AdamW learning rate ({preset_defaults('lr')})")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help=f"AdamW weight decay (default {defaults.weight_decay})")
    p.add_argument("--eval-batch-size", type=int, metavar="N",
                   help=f"test examples per evaluation batch (default {defaults.eval_batch_size})")
    p.add_argument("--seed", type=int, help=f"random seed: data, weights, dropout (default {defaults.seed})")
    p.add_argument("--device", help="torch device, e.g. cuda (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, metavar="N", help=f"torch CPU threads (default {defaults.threads})")
    p.add_argument("--out", help="write the settings and the results to this JSON file")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress bar and no printed summary")
    args = vars(p.parse_args(argv))
    if (args["data_dir"] is None) != (args["tokenizer_dir"] is None):
        p.error("--data-dir and --tokenizer-dir go together: XSum needs both, the synthetic task neither")
    setting = args.pop("setting")
    layers = args.pop("layers")
    given = {k: v for k, v in args.items() if v is not None}
    if layers is not None:
        given = {"encoder_layers": layers, "decoder_layers": layers, **given}
    names = {f.name for f in fields(Settings)}
    return settings_for(setting, **{k: v for k, v in given.items() if k in names})


def main(argv=None) -> None:
    settings = parse_args(argv)
    try:            # settings and files that cannot work: one line, not a traceback
        check(settings)
        if settings.data_dir:
            check_xsum_dirs(settings.data_dir, settings.tokenizer_dir)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"python -m reference.seq2seq.train: error: {e}") from None
    train(settings)


if __name__ == "__main__":
    main()
