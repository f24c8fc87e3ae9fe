"""Staff training check of the minbert reference: sentence classification on SST or CFIMDB.

It does what the course's classifier.py does, with the reference modules loaded as one set
(`reference.bert.load()`):

* each sentence is lowercased and stripped; batches are tokenized with padding and truncation;
* the loss is `F.nll_loss(log_probs, labels, reduction='sum') / batch_size`, the optimizer is the
  reference AdamW, the learning rate 1e-3 for 'pretrain' (BERT frozen) and 1e-5 for 'finetune';
* after each epoch the dev set is scored; the epoch with the best dev accuracy is kept, and its
  model writes `<task>-dev-output.txt` and `<task>-test-output.txt`, lines `{pred} ||| {sentence}`
  in the order of the data file, as the course's prediction files.

It also writes `<task>-<option>-summary.json`: dev accuracy per epoch, best dev accuracy, test
accuracy (null for CFIMDB, whose public test labels are all 0, i.e. hidden), wall time, the
settings and the weights used.

    python -m reference.bert.train --task sst --option finetune --quick
    python -m reference.bert.train --help
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import reference.bert
from grader.seeding import seed_everything
from reference.training import torch_threads

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_ENV = "DLGRADE_DATA_DIR"
NUM_LABELS = {"sst": 5, "cfimdb": 2}
DEFAULT_LR = {"pretrain": 1e-3, "finetune": 1e-5}
# --quick: a CPU preset that takes a few minutes; flags given explicitly take precedence.
QUICK = {"max_train": 1000, "max_length": 128, "epochs": 1}
EVAL_BATCH_SIZE = 64  # scoring needs no gradients, so batches can be larger than in training
PROGRESS_EVERY = 100  # training steps between progress lines


@dataclass
class Settings:
    task: str = "sst"
    option: str = "finetune"
    data_dir: str | None = None         # None: $DLGRADE_DATA_DIR, else <repo>/../shared/data/minbert
    out_dir: str = "."
    epochs: int = 10
    batch_size: int = 8
    lr: float | None = None             # None: 1e-3 for pretrain, 1e-5 for finetune
    max_train: int | None = None        # None: the whole training set
    max_eval: int | None = None         # None: the whole dev and test sets
    max_length: int = 512               # tokens, [CLS] and [SEP] included
    hidden_dropout_prob: float = 0.3
    seed: int = 11747
    device: str | None = None           # None: cuda if available, else cpu
    threads: int | None = None          # torch.set_num_threads on CPU; None: torch's default


@dataclass
class Summary:
    task: str
    option: str
    dev_acc_per_epoch: list = field(default_factory=list)
    train_loss_per_epoch: list = field(default_factory=list)
    best_epoch: int = -1
    best_dev_acc: float = 0.0
    test_acc: float | None = None
    note: str | None = None
    bert_max_abs_change: float = 0.0    # largest change of a BERT weight; 0 when pretraining
    wall_time_s: float = 0.0
    sizes: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def data_dir(settings: Settings) -> Path:
    given = settings.data_dir or os.environ.get(DATA_ENV) or REPO_ROOT.parent / "shared" / "data" / "minbert"
    directory = Path(given)
    missing = [f"{settings.task}-{split}.txt" for split in ("train", "dev", "test")
               if not (directory / f"{settings.task}-{split}.txt").is_file()]
    if missing:
        raise FileNotFoundError(f"data directory {directory} lacks {', '.join(missing)}: "
                                f"pass --data-dir or set ${DATA_ENV}")
    return directory


def read_data(path: Path) -> list[tuple[str, int]]:
    """(sentence, label) per line `label ||| sentence`; sentences lowercased and stripped as the course does."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                label, sentence = line.split(" ||| ", 1)
                examples.append((sentence.lower().strip(), int(label)))
    return examples


def subsample(examples: list, n: int | None, seed: int) -> list:
    """n examples drawn with `seed`, kept in data order; all of them when n is None or too large."""
    if n is None or n >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


class Batcher:
    """Tokenizes batches of (sentence, label) into tensors on `device`."""

    def __init__(self, tokenizer, max_length: int, device):
        self.tokenizer, self.max_length, self.device = tokenizer, max_length, device

    def __call__(self, examples):
        encoding = self.tokenizer([s for s, _ in examples], return_tensors="pt", padding=True,
                                  truncation=True, max_length=self.max_length)
        labels = torch.tensor([y for _, y in examples], dtype=torch.long)
        return (encoding["input_ids"].to(self.device), encoding["attention_mask"].to(self.device),
                labels.to(self.device))


@torch.no_grad()
def predict(model, examples, batcher: Batcher, batch_size: int = EVAL_BATCH_SIZE) -> list[int]:
    """Predicted labels in the order of `examples`; batches are formed by length, to pad little."""
    model.eval()
    by_length = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    preds = [0] * len(examples)
    for start in range(0, len(examples), batch_size):
        chunk = by_length[start:start + batch_size]
        ids, mask, _ = batcher([examples[i] for i in chunk])
        for i, pred in zip(chunk, model(ids, mask).argmax(dim=-1).tolist()):
            preds[i] = pred
    return preds


def accuracy(preds: list[int], examples) -> float:
    return sum(p == y for p, (_, y) in zip(preds, examples)) / len(examples)


def write_predictions(path: Path, preds: list[int], examples) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for pred, (sentence, _) in zip(preds, examples):
            f.write(f"{pred} ||| {sentence}\n")


def train(settings: Settings, log=print) -> Summary:
    """Train, keep the best dev epoch, write its prediction files and the summary; return the summary."""
    with torch_threads(settings.threads):
        return _train(settings, log)


def load_splits(settings: Settings):
    """(data directory, train, dev, test, whether the test labels are hidden), subsampled as asked."""
    directory = data_dir(settings)
    splits = {name: read_data(directory / f"{settings.task}-{name}.txt") for name in ("train", "dev", "test")}
    for name, examples in splits.items():
        if not all(0 <= y < NUM_LABELS[settings.task] for _, y in examples):
            raise ValueError(f"{settings.task}-{name}.txt has labels outside 0..{NUM_LABELS[settings.task] - 1}")
    # CFIMDB's public test file has label 0 on every line: the real labels are hidden.
    test_hidden = all(y == 0 for _, y in splits["test"])
    train_set = subsample(splits["train"], settings.max_train, settings.seed)
    dev_set = subsample(splits["dev"], settings.max_eval, settings.seed)
    test_set = subsample(splits["test"], settings.max_eval, settings.seed)
    return directory, train_set, dev_set, test_set, test_hidden


def train_epoch(model, optimizer, examples, batcher: Batcher, batch_size: int, order, log) -> float:
    """One pass over `examples` in a random order, as the course trains; returns the mean batch loss."""
    model.train()
    started = time.perf_counter()
    total, steps = 0.0, torch.randperm(len(examples), generator=order).split(batch_size)
    for step, idx in enumerate(steps, 1):
        ids, mask, labels = batcher([examples[i] for i in idx.tolist()])
        optimizer.zero_grad()
        loss = F.nll_loss(model(ids, mask), labels, reduction="sum") / batch_size
        loss.backward()
        optimizer.step()
        total += loss.item()
        if step % PROGRESS_EVERY == 0:
            log(f"  step {step}/{len(steps)}: train loss {total / step:.3f} ({time.perf_counter() - started:.0f} s)")
    return total / len(steps)


def _train(settings: Settings, log) -> Summary:
    started = time.perf_counter()
    if settings.task not in NUM_LABELS or settings.option not in DEFAULT_LR or settings.epochs < 1:
        raise ValueError(f"task must be one of {sorted(NUM_LABELS)}, option one of {sorted(DEFAULT_LR)}, "
                         f"epochs at least 1")
    lr = DEFAULT_LR[settings.option] if settings.lr is None else settings.lr
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seed_everything(settings.seed)
    directory, train_set, dev_set, test_set, test_hidden = load_splits(settings)

    mods = reference.bert.load()
    config = SimpleNamespace(num_labels=NUM_LABELS[settings.task], option=settings.option,
                             hidden_dropout_prob=settings.hidden_dropout_prob)
    model = mods["classifier"].BertSentClassifier(config).to(device)
    initial_bert = {k: v.detach().to("cpu", copy=True) for k, v in model.bert.state_dict().items()}
    optimizer = mods["optimizer"].AdamW(model.parameters(), lr=lr)
    tokenizer = mods["tokenizer"].BertTokenizer.from_pretrained("bert-base-uncased")
    batcher = Batcher(tokenizer, settings.max_length, device)

    bert_config = model.bert.config
    weights_dir = getattr(mods["base_bert"], "weights_dir", None)
    summary = Summary(
        task=settings.task, option=settings.option,
        sizes={"train": len(train_set), "dev": len(dev_set), "test": len(test_set)},
        weights={"source": str(weights_dir("bert-base-uncased")) if weights_dir else "bert-base-uncased",
                 "hidden_size": bert_config.hidden_size, "num_hidden_layers": bert_config.num_hidden_layers,
                 "parameters": sum(p.numel() for p in model.parameters())},
        settings={**asdict(settings), "data_dir": str(directory), "lr": lr, "device": str(device)},
    )
    log(f"{settings.task}/{settings.option}: {summary.sizes}, lr {lr}, device {device}, "
        f"weights {summary.weights['source']}")

    order = torch.Generator().manual_seed(settings.seed)
    best_state, best_dev_preds = None, None
    for epoch in range(settings.epochs):
        summary.train_loss_per_epoch.append(
            train_epoch(model, optimizer, train_set, batcher, settings.batch_size, order, log))
        dev_preds = predict(model, dev_set, batcher)
        summary.dev_acc_per_epoch.append(accuracy(dev_preds, dev_set))
        if best_state is None or summary.dev_acc_per_epoch[-1] > summary.best_dev_acc:
            summary.best_epoch, summary.best_dev_acc, best_dev_preds = epoch, summary.dev_acc_per_epoch[-1], dev_preds
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        log(f"epoch {epoch}: train loss {summary.train_loss_per_epoch[-1]:.3f}, "
            f"dev acc {summary.dev_acc_per_epoch[-1]:.3f} ({time.perf_counter() - started:.0f} s)")

    model.load_state_dict(best_state)
    test_preds = predict(model, test_set, batcher)
    if test_hidden:
        summary.note = "test labels are hidden (all 0 in the public file): test accuracy not reported"
    else:
        summary.test_acc = accuracy(test_preds, test_set)
    summary.bert_max_abs_change = max(
        (v.cpu().float() - initial_bert[k].float()).abs().max().item() for k, v in model.bert.state_dict().items())

    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.files = {"dev": str(out_dir / f"{settings.task}-dev-output.txt"),
                     "test": str(out_dir / f"{settings.task}-test-output.txt"),
                     "summary": str(out_dir / f"{settings.task}-{settings.option}-summary.json")}
    write_predictions(Path(summary.files["dev"]), best_dev_preds, dev_set)
    write_predictions(Path(summary.files["test"]), test_preds, test_set)
    summary.wall_time_s = round(time.perf_counter() - started, 1)
    Path(summary.files["summary"]).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    test_text = "hidden" if summary.test_acc is None else f"{summary.test_acc:.3f}"
    log(f"best epoch {summary.best_epoch}: dev acc {summary.best_dev_acc:.3f}, test acc {test_text}, "
        f"{summary.wall_time_s:.0f} s; wrote {', '.join(summary.files.values())}")
    return summary


def parse_args(argv=None) -> Settings:
    defaults = Settings()
    p = argparse.ArgumentParser(
        prog="python -m reference.bert.train",
        description="Train the minbert reference classifier on SST or CFIMDB, as the course's "
                    "classifier.py does, and write its dev/test prediction files and a summary JSON.")
    p.add_argument("--task", choices=sorted(NUM_LABELS), default=defaults.task)
    p.add_argument("--option", choices=sorted(DEFAULT_LR), default=defaults.option,
                   help="pretrain: BERT frozen, only the classifier head learns; finetune: everything learns "
                        "(default %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help=f"directory with <task>-{{train,dev,test}}.txt (default: ${DATA_ENV}, "
                        f"else <repo root>/../shared/data/minbert)")
    p.add_argument("--out-dir", default=defaults.out_dir,
                   help="where <task>-dev-output.txt, <task>-test-output.txt and "
                        "<task>-<option>-summary.json go (default: the current directory)")
    p.add_argument("--epochs", type=int, help=f"training epochs (default {defaults.epochs})")
    p.add_argument("--batch-size", type=int, help=f"examples per batch (default {defaults.batch_size})")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3 for pretrain, 1e-5 for finetune)")
    p.add_argument("--max-train", type=int, metavar="N",
                   help="train on N examples drawn with --seed (default: all)")
    p.add_argument("--max-eval", type=int, metavar="N",
                   help="score and write only N dev and N test examples drawn with --seed (default: all)")
    p.add_argument("--max-length", type=int,
                   help=f"truncate sentences to this many tokens, [CLS] and [SEP] included "
                        f"(default {defaults.max_length})")
    p.add_argument("--hidden-dropout-prob", type=float, default=defaults.hidden_dropout_prob,
                   help="dropout before the classifier layer (default %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true",
                   help="CPU preset of a few minutes: " + ", ".join(
                       f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                        + "; flags given explicitly take precedence")
    args = vars(p.parse_args(argv))
    quick = args.pop("quick")
    given = {k: v for k, v in args.items() if v is not None}
    preset = {k: v for k, v in QUICK.items() if k not in given} if quick else {}
    return Settings(**{**{f.name: getattr(defaults, f.name) for f in fields(Settings)}, **preset, **given})


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
