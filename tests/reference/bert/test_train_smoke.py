"""Smoke test of the staff training check (reference/bert/train.py) on a tiny slice of SST.

A few optimizer steps on 64 sentences, dev and test scored on 24 sentences each: the prediction
files must be in the course's format, one line per scored example in data order, and 'pretrain'
must leave BERT's weights as they were while 'finetune' changes them.
"""
import json
import os
import re
from pathlib import Path

import pytest

from reference.bert import train as train_module

DATA_DIR = Path(os.environ.get(train_module.DATA_ENV)
                or train_module.REPO_ROOT.parent / "shared" / "data" / "minbert")
MAX_EVAL = 24

pytestmark = pytest.mark.skipif(not (DATA_DIR / "sst-train.txt").is_file(),
                                reason=f"minbert data not found in {DATA_DIR}")


@pytest.fixture(autouse=True)
def no_weights_override(monkeypatch):
    monkeypatch.delenv("DLGRADE_BERT_WEIGHTS", raising=False)


def tiny(option, out_dir):
    return train_module.Settings(task="sst", option=option, data_dir=str(DATA_DIR), out_dir=str(out_dir),
                                 epochs=1, batch_size=16, max_train=64, max_eval=MAX_EVAL, max_length=32,
                                 threads=1, device="cpu")


def expected_sentences(split):
    examples = train_module.read_data(DATA_DIR / f"sst-{split}.txt")
    return [s for s, _ in train_module.subsample(examples, MAX_EVAL, train_module.Settings().seed)]


@pytest.fixture(scope="module", params=["pretrain", "finetune"])
def run(request, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp(request.param)
    return train_module.train(tiny(request.param, out_dir), log=lambda *_: None), out_dir


def test_prediction_files_follow_the_course_format(run):
    summary, out_dir = run
    for split in ("dev", "test"):
        lines = (out_dir / f"sst-{split}-output.txt").read_text(encoding="utf-8").splitlines()
        wanted = expected_sentences(split)
        assert len(lines) == MAX_EVAL
        for line, sentence in zip(lines, wanted):
            match = re.fullmatch(r"(\d+) \|\|\| (.*)", line)
            assert match, f"not '{{pred}} ||| {{sentence}}': {line!r}"
            assert 0 <= int(match.group(1)) < 5
            assert match.group(2) == sentence == sentence.lower().strip()   # as the course, in data order


def test_summary_is_written_and_consistent(run):
    summary, out_dir = run
    written = json.loads((out_dir / f"sst-{summary.option}-summary.json").read_text())
    assert written["sizes"] == {"train": 64, "dev": MAX_EVAL, "test": MAX_EVAL}
    assert len(written["dev_acc_per_epoch"]) == 1
    assert written["best_dev_acc"] == max(written["dev_acc_per_epoch"])
    assert 0.0 <= written["test_acc"] <= 1.0                     # SST's test labels are real
    assert written["settings"]["lr"] == train_module.DEFAULT_LR[summary.option]


def test_pretrain_freezes_bert_and_finetune_updates_it(run):
    summary, _ = run
    if summary.option == "pretrain":
        assert summary.bert_max_abs_change == 0.0
    else:
        assert summary.bert_max_abs_change > 0.0


def test_cfimdb_hidden_test_labels_give_no_test_accuracy(tmp_path):
    settings = train_module.Settings(task="cfimdb", option="pretrain", data_dir=str(DATA_DIR),
                                     out_dir=str(tmp_path), epochs=1, batch_size=16, max_train=16,
                                     max_eval=8, max_length=32, threads=1, device="cpu")
    summary = train_module.train(settings, log=lambda *_: None)
    assert summary.test_acc is None and "hidden" in summary.note
    assert len((tmp_path / "cfimdb-test-output.txt").read_text().splitlines()) == 8


def test_quick_preset_and_missing_data(tmp_path):
    settings = train_module.parse_args(["--quick", "--epochs", "3"])
    assert (settings.max_train, settings.max_length, settings.epochs) == (1000, 128, 3)
    with pytest.raises(FileNotFoundError, match="lacks"):
        train_module.data_dir(train_module.Settings(data_dir=str(tmp_path)))
