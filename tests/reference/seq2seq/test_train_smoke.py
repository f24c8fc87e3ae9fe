"""Smoke test of the summarization staff training check (reference/seq2seq/train.py).

The data: the synthetic task's examples follow its rule (content words in source order, at most
10, then eos, then -100; sources right-padded with 0) and are a function of the seed. The XSum path
is checked without transformers and without any download: its jsonl reader, its error messages
for missing files, and the encoding with a fake tokenizer (whitespace words to ids), which also
trains a few steps. The command line parses into the presets. A tiny model trains on the synthetic
task in a few seconds: the loss must go down, the accuracies must be rates, cached and uncached
greedy generation must agree, and the JSON must hold the key numbers.
"""
import json
import math
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from reference.seq2seq import train as train_module
from reference.seq2seq.transformer import TransformerConfig

TINY = dict(encoder_layers=1, decoder_layers=1, d_model=64, d_kv=16, d_ff=128, dropout=0.0, batch_size=32,
            steps=300, lr=3e-3, warmup_steps=20, test_size=200, eval_batch_size=100, threads=1, seed=0,
            device="cpu", quiet=True)


# ----------------------------------------------------------------------------- synthetic data

def test_the_synthetic_examples_follow_the_rule():
    input_ids, labels = train_module.synthetic_examples(500, torch.Generator().manual_seed(3))
    assert input_ids.shape == (500, train_module.MAX_SOURCE_LEN) and input_ids.dtype == torch.long
    assert labels.shape == (500, train_module.MAX_SUMMARY_LEN + 1) and labels.dtype == torch.long
    lengths = (input_ids != train_module.PAD_ID).sum(dim=1)
    assert lengths.min() >= train_module.MIN_SOURCE_LEN and lengths.max() <= train_module.MAX_SOURCE_LEN
    capped = 0
    for source, label, n in zip(input_ids.tolist(), labels.tolist(), lengths.tolist()):
        # right padding: n words in 2..39, then pad only
        assert all(2 <= w < train_module.SYNTHETIC_VOCAB for w in source[:n])
        assert all(w == train_module.PAD_ID for w in source[n:])
        # the summary, written out here: content ids 2..13 in source order, at most 10
        expected = [w for w in source[:n] if 2 <= w <= 13][:10]
        assert expected == train_module.synthetic_summary(source)
        k = len(expected)
        assert label[:k] == expected and label[k] == train_module.EOS_ID
        assert all(t == -100 for t in label[k + 1:])
        capped += sum(2 <= w <= 13 for w in source[:n]) > 10
    # both the cap and the empty-ish ends of the distribution occur in 500 examples
    assert capped > 0
    summary_lengths = (labels != -100).sum(dim=1) - 1
    assert summary_lengths.max() == 10 and summary_lengths.min() < 3
    # about a third of the words are content words (12 of the 38)
    real = input_ids != train_module.PAD_ID
    share = ((input_ids >= 2) & (input_ids <= 13) & real).sum() / real.sum()
    assert abs(share.item() - 12 / 38) < 0.03


def test_the_synthetic_data_depends_on_the_seed_and_only_on_it():
    a = train_module.synthetic_data(train_module.Settings(seed=0, test_size=50))
    b = train_module.synthetic_data(train_module.Settings(seed=0, test_size=50))
    c = train_module.synthetic_data(train_module.Settings(seed=1, test_size=50))
    assert torch.equal(a.test[0], b.test[0]) and torch.equal(a.test[1], b.test[1])
    assert not torch.equal(a.test[0], c.test[0])
    batch_a, batch_b, batch_c = a.next_batch(16), b.next_batch(16), c.next_batch(16)
    assert torch.equal(batch_a[0], batch_b[0]) and torch.equal(batch_a[1], batch_b[1])
    assert not torch.equal(batch_a[0], batch_c[0])
    # the training stream moves on, and is not the test split
    assert not torch.equal(a.next_batch(16)[0], batch_a[0])
    assert not torch.equal(batch_a[0], a.test[0][:16])
    assert (a.vocab_size, a.pad_id, a.eos_id, a.n_train, a.max_new_tokens) == (40, 0, 1, None, 11)


def test_trim_drops_the_columns_that_are_padding_everywhere():
    ids = torch.tensor([[5, 6, 0, 0, 0], [7, 0, 0, 0, 0]])
    labels = torch.tensor([[3, 1, -100, -100], [1, -100, -100, -100]])
    short_ids, short_labels = train_module.trim(ids, labels, pad_id=0)
    assert torch.equal(short_ids, ids[:, :2]) and torch.equal(short_labels, labels[:, :2])


def test_exact_match_compares_up_to_the_first_eos():
    labels = torch.tensor([[4, 5, 1, -100], [4, 1, -100, -100], [1, -100, -100, -100], [6, 7, 1, -100]])
    generated = torch.tensor([[1, 4, 5, 1, 0],       # right, then padding after eos
                              [1, 4, 5, 1, 0],       # one word too many
                              [1, 1, 0, 0, 0],       # empty summary, right
                              [1, 6, 7, 7, 7]])      # right words but never stops
    assert train_module.exact_matches(generated, labels, eos_id=1) == [True, False, True, False]


# ----------------------------------------------------------------------------- XSum path, no transformers

class FakeTokenizer:
    """Whitespace words -> ids 2..49 by a fixed table, eos (1) appended, truncation to max_length with eos kept."""
    pad_token_id, eos_token_id = 0, 1

    def __init__(self):
        self.table = {}

    def word_id(self, word):
        return self.table.setdefault(word, 2 + len(self.table) % 48)

    def __call__(self, texts, max_length, truncation):
        assert truncation
        return {"input_ids": [[self.word_id(w) for w in text.split()][:max_length - 1] + [1] for text in texts]}

    def __len__(self):
        return 50

    def decode(self, ids, skip_special_tokens=True):
        words = {v: k for k, v in self.table.items()}
        return " ".join(words.get(i, "?") for i in ids if i > 1)


def write_fake_xsum(directory, n_train=40, n_test=12):
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.jsonl", n_train), ("validation.jsonl", n_test)):
        lines = [json.dumps({"document": " ".join(f"w{(i + j) % 30}" for j in range(5 + i % 9)),
                             "summary": " ".join(f"w{(i + j) % 30}" for j in range(1 + i % 4)), "id": str(i)})
                 for i in range(n)]
        (directory / name).write_text("\n".join(lines[:n // 2]) + "\n\n" + "\n".join(lines[n // 2:]) + "\n")
    return directory


def fake_tokenizer_dir(directory):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer_config.json").write_text("{}")
    return directory


def test_the_jsonl_reader_reads_one_object_a_line(tmp_path):
    write_fake_xsum(tmp_path, n_train=7)
    records = train_module.read_jsonl(tmp_path / "train.jsonl")
    assert len(records) == 7                                            # the blank line is skipped
    assert records[3] == {"document": "w3 w4 w5 w6 w7 w8 w9 w10", "summary": "w3 w4 w5 w6", "id": "3"}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"document": "a", "summary": "b"}) + "\n"
                                        + json.dumps({"document": "a"}) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        train_module.read_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        train_module.read_jsonl(tmp_path / "broken.jsonl")


def test_missing_xsum_files_are_named(tmp_path):
    data, tok = write_fake_xsum(tmp_path / "xsum"), fake_tokenizer_dir(tmp_path / "tok")
    train_module.check_xsum_dirs(data, tok)                             # all there: no error
    (data / "validation.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="validation.jsonl"):
        train_module.check_xsum_dirs(data, tok)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        train_module.check_xsum_dirs(tmp_path / "nowhere", tok)
    write_fake_xsum(data)
    with pytest.raises(FileNotFoundError, match="tokenizer-dir .* is not a folder"):
        train_module.check_xsum_dirs(data, tmp_path / "no-tokenizer")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no saved tokenizer"):
        train_module.check_xsum_dirs(data, empty)
    # through the training entry point, before any tokenizer is loaded
    with pytest.raises(FileNotFoundError, match="no saved tokenizer"):
        train_module.train(train_module.Settings(**TINY, data_dir=str(data), tokenizer_dir=str(empty)))


def test_data_dir_and_tokenizer_dir_go_together(tmp_path, capsys):
    with pytest.raises(ValueError, match="go together"):
        train_module.check(train_module.Settings(data_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="go together"):
        train_module.check(train_module.Settings(tokenizer_dir=str(tmp_path)))
    with pytest.raises(SystemExit):
        train_module.parse_args(["--data-dir", str(tmp_path)])
    assert "go together" in capsys.readouterr().err


def test_the_command_refuses_missing_files_and_bad_sizes_in_one_line(tmp_path):
    data = write_fake_xsum(tmp_path / "xsum")
    with pytest.raises(SystemExit, match="error: --tokenizer-dir .* is not a folder"):
        train_module.main(["--data-dir", str(data), "--tokenizer-dir", str(tmp_path / "none"), "--quiet"])
    with pytest.raises(SystemExit, match="error: d_model 60 must be a positive multiple of d_kv 16"):
        train_module.main(["--d-model", "60", "--quiet"])


def test_xsum_pairs_are_truncated_padded_and_end_with_eos(tmp_path):
    data, tok = write_fake_xsum(tmp_path / "xsum"), fake_tokenizer_dir(tmp_path / "tok")
    settings = train_module.Settings(data_dir=str(data), tokenizer_dir=str(tok), max_source_len=8,
                                     max_target_len=3, max_train=30, test_size=10)
    loaded = train_module.xsum_data(settings, tokenizer=FakeTokenizer())
    input_ids, labels = loaded.test
    assert (loaded.name, loaded.n_train, loaded.vocab_size, len(input_ids)) == ("xsum", 30, 50, 10)
    assert input_ids.shape[1] == 8 and labels.shape[1] == 3 == loaded.max_new_tokens
    for row, label in zip(input_ids.tolist(), labels.tolist()):
        n = sum(t != 0 for t in row)
        assert row[n - 1] == 1 and all(t == 0 for t in row[n:]) and all(t > 1 for t in row[:n - 1])
        k = sum(t != -100 for t in label)
        assert label[k - 1] == 1 and all(t == -100 for t in label[k:]) and all(t > 1 for t in label[:k - 1])
    # the same seed draws the same documents; the training batches wrap around the 30 documents
    again = train_module.xsum_data(settings, tokenizer=FakeTokenizer())
    assert torch.equal(again.test[0], input_ids)
    batches = [loaded.next_batch(16) for _ in range(4)]                 # 64 > 30: three epochs touched
    assert all(len(ids) == 16 for ids, _ in batches)
    assert len(loaded.next_batch(100)[0]) == 100                        # larger than the training split


def test_a_few_steps_train_on_fake_xsum(tmp_path):
    data, tok = write_fake_xsum(tmp_path / "xsum"), fake_tokenizer_dir(tmp_path / "tok")
    settings = train_module.Settings(**{**TINY, "steps": 10, "test_size": 6}, data_dir=str(data),
                                     tokenizer_dir=str(tok), max_source_len=16, max_target_len=8)
    summary = train_module.train(settings, tokenizer=FakeTokenizer())
    assert summary.data["name"] == "xsum" and summary.data["train"] == 40 and summary.data["test"] == 6
    assert len(summary.losses) == 10 and all(math.isfinite(x) for x in summary.losses)
    assert 0 <= summary.token_acc <= 1 and isinstance(summary.samples[0]["generated"], str)


def test_importing_the_module_does_not_import_transformers():
    code = "import sys, reference.seq2seq.train; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- settings

def test_the_course_setting_builds_the_notebooks_model():
    settings = train_module.settings_for("course")
    data = train_module.synthetic_data(train_module.Settings(test_size=1))
    assert asdict(train_module.model_config(settings, data)) == asdict(TransformerConfig())
    cpu = train_module.model_config(train_module.Settings(), data)
    assert (cpu.vocab_size, cpu.num_encoder_layers, cpu.d_model, cpu.d_model // cpu.d_kv) == (40, 2, 64, 4)


def test_the_command_line_sets_the_settings():
    assert train_module.parse_args([]) == train_module.Settings()
    course = train_module.parse_args(["--setting", "course", "--device", "cuda"])
    assert all(getattr(course, k) == v for k, v in train_module.COURSE.items())
    assert course.device == "cuda" and course.setting == "course" and course.d_model == 512
    settings = train_module.parse_args(["--steps", "30", "--lr", "0.01", "--batch-size", "8", "--layers", "3",
                                        "--decoder-layers", "1", "--d-model", "32", "--seed", "4",
                                        "--out", "x.json", "--quiet", "--threads", "2",
                                        "--data-dir", "/data/xsum", "--tokenizer-dir", "/data/t5"])
    assert (settings.steps, settings.lr, settings.batch_size) == (30, 0.01, 8)
    assert (settings.encoder_layers, settings.decoder_layers, settings.d_model) == (3, 1, 32)
    assert (settings.seed, settings.out, settings.quiet, settings.threads) == (4, "x.json", True, 2)
    assert (settings.data_dir, settings.tokenizer_dir) == ("/data/xsum", "/data/t5")
    assert train_module.parse_args(["--setting", "course", "--d-model", "256"]).d_model == 256


def test_impossible_settings_are_refused():
    for bad in (dict(d_model=60, d_kv=16), dict(encoder_layers=0), dict(steps=-1), dict(batch_size=0),
                dict(lr=0.0), dict(dropout=1.0), dict(n_positions=16), dict(vocab_size=30),
                dict(setting="gpu")):
        with pytest.raises(ValueError):
            train_module.check(train_module.Settings(**bad))
    with pytest.raises(ValueError):
        train_module.settings_for("gpu")


def test_the_learning_rate_warms_up_then_decays_to_zero():
    settings = train_module.Settings(steps=100, warmup_steps=10, lr=1e-3)
    rates = [train_module.learning_rate(step, settings) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3) == max(rates)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:10])) and all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[-1] == pytest.approx(1e-3 / 90)


# ----------------------------------------------------------------------------- a tiny run

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq2seq") / "train.json"
    return train_module.train(train_module.Settings(**TINY, out=str(out))), out


def test_training_lowers_the_loss_and_beats_the_untrained_model(run):
    summary, _ = run
    assert len(summary.losses) == TINY["steps"] and len(summary.loss_curve) == train_module.LOSS_WINDOWS
    assert summary.loss_last < 0.5 * summary.loss_first
    assert summary.test_loss < summary.untrained["test_loss"]
    # 300 steps: token accuracy 0.92-0.94 over seeds 0-2, against 0.06 untrained
    assert summary.token_acc > summary.untrained["token_acc"] + 0.5
    assert summary.exact_match > summary.untrained["exact_match"]
    # an untrained model's loss is about log(40) per token
    assert abs(summary.untrained["test_loss"] - math.log(40)) < 1


def test_the_accuracies_are_rates(run):
    summary, _ = run
    n = TINY["test_size"]
    for metrics in (asdict(summary), summary.untrained):
        for key in ("token_acc", "exact_match", "exact_match_uncached", "identical_rate"):
            assert 0.0 <= metrics[key] <= 1.0
        # an exact-match rate on 200 test examples is a whole number of them
        assert abs(metrics["exact_match"] * n - round(metrics["exact_match"] * n)) < 1e-9
        assert metrics["generate_cached_s"] > 0 and metrics["generate_uncached_s"] > 0


def test_cached_and_uncached_generation_agree(run):
    summary, _ = run
    assert summary.generations_identical and summary.identical_rate == 1.0
    assert summary.exact_match == summary.exact_match_uncached
    sample = summary.samples[0]
    assert sample["summary"] == train_module.synthetic_summary(sample["source"])
    assert sample["exact"] == (sample["generated"] == sample["summary"])


def test_the_json_holds_the_key_numbers(run):
    summary, out = run
    written = json.loads(out.read_text())
    for key in ("token_acc", "exact_match", "exact_match_uncached", "generations_identical", "loss_first",
                "loss_last", "generate_cached_s", "generate_uncached_s", "test_loss"):
        assert written[key] == getattr(summary, key)
    assert written["untrained"] == summary.untrained and len(written["loss_curve"]) == train_module.LOSS_WINDOWS
    assert written["settings"]["d_model"] == 64 and written["settings"]["device"] == "cpu"
    assert written["data"]["name"] == "synthetic" and written["data"]["test"] == TINY["test_size"]
    assert "losses" not in written and math.isfinite(written["wall_time_s"])


def test_the_table_shows_before_and_after(run):
    summary, _ = run
    table = train_module.summary_table(summary)
    assert "untrained" in table and f"{summary.exact_match:.3f}" in table and f"{summary.token_acc:.3f}" in table
