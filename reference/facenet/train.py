"""Staff training check of the FaceNet reference loss: does it learn?

A small embedding network is trained with `online_semi_hard_triplet_loss` (reference/facenet/
triplet.py, margin 0.2) on scikit-learn's bundled 8x8 digits (1797 images, no download), and
verified as the paper verifies faces (Schroff et al. 2015, section 4.1), before and after
training. The identities are held out as in face verification:

* train on the digits 0-6 (80 % of their images, drawn with the seed);
* evaluate on the digits 7-9, identities the network never saw ("unseen"), and, for context, on
  the other 20 % of the images of 0-6 ("seen identities, new images").

Setup:

* pixels scaled to [0, 1], each image flattened to 64 features, float32;
* an MLP 64 -> 128 -> 64 -> 32 with ReLUs, its output L2-normalised: f(x) lies on the unit
  hypersphere, and the distance is D(x_i, x_j) = |f(x_i) - f(x_j)|^2, as in the paper;
* each mini-batch holds P identities x K images (default 7 x 8), so that every anchor has
  positives and negatives to mine from (the paper puts ~40 faces of each identity in a batch);
* Adam; a batch in which semi-hard mining finds no triplet (a collapsed embedding, or every
  negative already beyond the margin) takes no step and is counted as skipped.

Verification, exactly as section 4.1 defines it: over all pairs (i, j), i < j, of an evaluation
set, P_same holds the pairs of one identity and P_diff the pairs of two; for a threshold d,

    TA(d) = {(i, j) in P_same : D(x_i, x_j) <= d}      VAL(d) = |TA(d)| / |P_same|
    FA(d) = {(i, j) in P_diff : D(x_i, x_j) <= d}      FAR(d) = |FA(d)| / |P_diff|

and VAL@FAR=1e-3 is VAL at the largest d with FAR(d) <= 1e-3, found exactly from the sorted
different-pair distances (`val_at_far`; a threshold accepts every pair at distance <= d, ties
included). VAL@FAR=1e-2 and leave-one-out nearest-neighbour accuracy are reported for context,
and so are the raw pixels (L2-normalised) as an embedding that learnt nothing.

What to expect (defaults, seed 0, measured on a shared 2-core CPU, about 15 s): the loss learns
the training identities, VAL@FAR=1e-3 on new images of the digits 0-6 going from 0.12 (random
network) to 0.94, and semi-hard mining runs dry within a few hundred steps, when no negative is
left inside the margin band (most of the 2000 batches are then skipped). It does not transfer
to the unseen digits 7-9: VAL@FAR=1e-3 there goes from 0.06 to 0.02, below the raw pixels'
0.14; other steps, learning rates, embedding sizes, K, P, widths, weight decay, 1-pixel shifts
and seeds 0-2 gave 0.01-0.08. Seven identities are far too few for FaceNet's open-set generalisation, which rests
on millions of them (8M in the paper); the unseen-digit row is the honest measure of that.

    python -m reference.facenet.train                       # about 15 s on 2 CPU cores
    python -m reference.facenet.train --steps 200 --out runs/facenet/train.json
    python -m reference.facenet.train --help
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grader.seeding import seed_everything
from reference.facenet.triplet import (MARGIN, online_semi_hard_triplet_loss, pairwise_distances,
                                       semi_hard_triplets)
from reference.training import torch_threads, write_summary

TRAIN_DIGITS = tuple(range(7))       # the identities the network trains on
UNSEEN_DIGITS = (7, 8, 9)            # identities held out entirely, as in face verification
FARS = (1e-3, 1e-2)                  # the false-accept rates at which VAL is reported
CURVE_POINTS = 20                    # training-loss points written to the JSON


@dataclass
class Settings:
    steps: int = 2000
    seed: int = 0
    batch_identities: int = 7           # P: identities per batch (at most the 7 training digits)
    images_per_identity: int = 8        # K: images of each identity per batch
    lr: float = 1e-3
    margin: float = MARGIN
    hidden: tuple = (128, 64)
    embedding_dim: int = 32
    holdout_fraction: float = 0.2       # share of the training digits' images kept for evaluation
    threads: int | None = 1             # torch.set_num_threads, None: torch's (1 beat 2 on 2 shared cores)
    out: str | None = None              # JSON summary path; None: no file
    quiet: bool = False


@dataclass
class Summary:
    settings: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    before: dict = field(default_factory=dict)     # evaluation set -> metrics, random network
    after: dict = field(default_factory=dict)      # evaluation set -> metrics, trained network
    pixels: dict = field(default_factory=dict)     # evaluation set -> metrics, raw pixels
    steps_taken: int = 0
    skipped_batches: int = 0                       # batches in which mining found no triplet
    mean_triplets: float = 0.0                     # semi-hard triplets per batch, on average
    loss_curve: list = field(default_factory=list)     # [steps taken, mean loss since the previous point]
    losses: list = field(default_factory=list)     # per step taken; not written to the JSON
    wall_time_s: float = 0.0


# ----------------------------------------------------------------------------- data

def load_data(settings: Settings) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train', 'seen', 'unseen'} -> (images [N, 64] float32 in [0, 1], labels [N] int64).

    'unseen' is every image of the digits 7-9; the images of 0-6 are split, per digit and with the
    seed, into 'train' and 'seen' (holdout_fraction of them)."""
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download

    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)   # pixels are 0..16
    labels = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(settings.seed)
    train_idx, seen_idx = [], []
    for digit in TRAIN_DIGITS:
        idx = (labels == digit).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_seen = round(settings.holdout_fraction * len(idx))
        seen_idx.append(idx[:n_seen])
        train_idx.append(idx[n_seen:])
    unseen_idx = torch.isin(labels, torch.tensor(UNSEEN_DIGITS)).nonzero().squeeze(1)
    splits = {"train": torch.cat(train_idx).sort().values, "seen": torch.cat(seen_idx).sort().values,
              "unseen": unseen_idx}
    return {name: (images[idx], labels[idx]) for name, idx in splits.items()}


class PKSampler:
    """Mini-batches of P identities x K images: P identities drawn without replacement, then K
    images of each, without replacement within the batch."""

    def __init__(self, labels: torch.Tensor, p: int, k: int, generator: torch.Generator):
        self.identities = labels.unique()
        self.by_identity = [(labels == c).nonzero().squeeze(1) for c in self.identities]
        fewest = min(len(idx) for idx in self.by_identity)
        if not 2 <= p <= len(self.identities) or not 2 <= k <= fewest:
            raise ValueError(f"need 2 <= P <= {len(self.identities)} identities and 2 <= K <= {fewest} "
                             f"images per identity, got P={p}, K={k}")
        self.p, self.k, self.generator = p, k, generator

    def __call__(self) -> torch.Tensor:
        chosen = torch.randperm(len(self.identities), generator=self.generator)[:self.p]
        batch = []
        for c in chosen.tolist():
            idx = self.by_identity[c]
            batch.append(idx[torch.randperm(len(idx), generator=self.generator)[:self.k]])
        return torch.cat(batch)                                     # [P * K] indices


# ----------------------------------------------------------------------------- model

class EmbeddingNet(nn.Module):
    """MLP with ReLUs whose output is L2-normalised: every embedding has norm 1."""

    def __init__(self, in_features: int = 64, hidden=(128, 64), embedding_dim: int = 32):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, embedding_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


# ----------------------------------------------------------------------------- evaluation

def pair_distances(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(same, diff): the squared L2 distances of all pairs i < j of one identity, and of two, float64."""
    distances = pairwise_distances(embeddings.detach().double()).cpu().numpy()       # [N, N]
    labels = labels.cpu().numpy()
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    d = distances[i, j]
    return d[same], d[~same]


def val_at_far(same: np.ndarray, diff: np.ndarray, far: float) -> dict:
    """VAL at the largest threshold d with FAR(d) <= far, a threshold accepting every pair at
    distance <= d (section 4.1 of the paper).

    With n different pairs, FAR(d) <= far allows at most k false accepts, k the largest integer
    with k / n <= far. Sort the different-pair distances: any d below the (k+1)-th smallest,
    `cutoff`, accepts at most k of them, and no d >= cutoff does (ties at the cutoff count in full).
    VAL grows with d, so the best admissible d accepts every pair closer than the cutoff: that is
    the largest observed distance below it, returned as `threshold` (None where no distance lies
    below the cutoff; VAL is 0 then). Returns val, the far achieved there, threshold, ta, fa."""
    same = np.sort(np.asarray(same, dtype=np.float64))
    diff = np.sort(np.asarray(diff, dtype=np.float64))
    if len(same) == 0 or len(diff) == 0:
        raise ValueError("VAL@FAR needs at least one same-identity pair and one different-identity pair")
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must lie in [0, 1], got {far}")
    n = len(diff)
    k = min(n, math.floor(far * n))
    while k < n and (k + 1) / n <= far:    # guard the floor against rounding of far * n
        k += 1
    while k > 0 and k / n > far:
        k -= 1
    cutoff = diff[k] if k < n else math.inf
    ta = int(np.searchsorted(same, cutoff, side="left"))     # same pairs at distance < cutoff
    fa = int(np.searchsorted(diff, cutoff, side="left"))     # different pairs at distance < cutoff (<= k)
    below = [a[c - 1] for a, c in ((same, ta), (diff, fa)) if c > 0]
    threshold = float(max(below)) if below else None
    return {"val": ta / len(same), "far": fa / n, "threshold": threshold, "ta": ta, "fa": fa}


def nearest_neighbour_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Leave-one-out 1-NN: the share of images whose closest other image has their identity."""
    distances = pairwise_distances(embeddings.detach().double())
    distances.fill_diagonal_(math.inf)
    return (labels[distances.argmin(dim=1)] == labels).double().mean().item()


def evaluate_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> dict:
    """VAL@FAR for each of FARS, the thresholds and FARs achieved, and the 1-NN accuracy."""
    same, diff = pair_distances(embeddings, labels)
    result = {"pairs_same": len(same), "pairs_diff": len(diff)}
    for far in FARS:
        r = val_at_far(same, diff, far)
        result[f"val@far={far:g}"] = r["val"]
        result[f"far_achieved@far={far:g}"] = r["far"]
        result[f"threshold@far={far:g}"] = r["threshold"]
    result["nn_accuracy"] = nearest_neighbour_accuracy(embeddings, labels)
    return result


@torch.no_grad()
def evaluate(model: nn.Module, data: dict, names=("unseen", "seen")) -> dict:
    model.eval()
    return {name: evaluate_embeddings(model(data[name][0]), data[name][1]) for name in names}


# ----------------------------------------------------------------------------- training

def train(settings: Settings, log=print) -> Summary:
    """Evaluate the random network, train it, evaluate it again; write the JSON if asked."""
    with torch_threads(settings.threads):
        return _train(settings, log)


def _train(settings: Settings, log) -> Summary:
    started = time.perf_counter()
    say = (lambda *_: None) if settings.quiet else log
    seed_everything(settings.seed)
    data = load_data(settings)
    x_train, y_train = data["train"]
    sampler = PKSampler(y_train, settings.batch_identities, settings.images_per_identity,
                        torch.Generator().manual_seed(settings.seed))
    model = EmbeddingNet(x_train.shape[1], settings.hidden, settings.embedding_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)

    summary = Summary(settings=asdict(settings),
                      sizes={name: {"images": len(y), "identities": y.unique().tolist()}
                             for name, (_, y) in data.items()})
    summary.pixels = {name: evaluate_embeddings(F.normalize(data[name][0], dim=-1), data[name][1])
                      for name in ("unseen", "seen")}
    summary.before = evaluate(model, data)
    say(f"train: {len(y_train)} images of digits {TRAIN_DIGITS}; evaluation on the unseen digits "
        f"{UNSEEN_DIGITS} ({len(data['unseen'][1])} images) and on {len(data['seen'][1])} held-out images "
        f"of the training digits; before training VAL@FAR=1e-3 (unseen) "
        f"{summary.before['unseen']['val@far=0.001']:.3f}")

    triplet_counts = []
    progress = tqdm(range(settings.steps), desc="facenet", unit="step", disable=settings.quiet,
                    dynamic_ncols=True)
    model.train()
    for step in progress:
        idx = sampler()
        x, y = x_train[idx], y_train[idx]
        embeddings = model(x)                                                   # [P*K, D], unit norm
        n_triplets = len(semi_hard_triplets(embeddings, y, settings.margin))   # what the loss will use
        triplet_counts.append(n_triplets)
        if n_triplets == 0:                 # nothing to learn from: skip rather than step on a zero loss
            summary.skipped_batches += 1
        else:
            loss = online_semi_hard_triplet_loss(embeddings, y, settings.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            summary.losses.append(loss.item())
        if step % 10 == 0 or step == settings.steps - 1:
            recent_loss, recent_triplets = summary.losses[-50:], triplet_counts[-50:]
            progress.set_postfix(loss=f"{np.mean(recent_loss):.4f}" if recent_loss else "-",
                                 triplets=f"{np.mean(recent_triplets):.0f}", skipped=summary.skipped_batches,
                                 refresh=False)
    progress.close()
    summary.steps_taken = len(summary.losses)
    summary.mean_triplets = float(np.mean(triplet_counts)) if triplet_counts else 0.0
    chunks = np.array_split(np.arange(summary.steps_taken), min(CURVE_POINTS, summary.steps_taken) or 1)
    summary.loss_curve = [[int(c[-1]) + 1, float(np.mean([summary.losses[i] for i in c]))]
                          for c in chunks if len(c)]

    summary.after = evaluate(model, data)
    summary.wall_time_s = round(time.perf_counter() - started, 1)
    say(summary_table(summary))
    if settings.out:
        say(f"wrote {write_summary(summary, settings.out, leave_out=('losses',))}")
    return summary


def summary_table(summary: Summary) -> str:
    """The final results as a small text table, and a line on the training run."""
    header = ("", "VAL@FAR=1e-3", "VAL@FAR=1e-2", "1-NN acc")
    rows = []
    for name, title in (("unseen", "unseen digits 7-9"), ("seen", "held-out images of 0-6")):
        for when in ("pixels", "before", "after"):
            m = getattr(summary, when)[name]
            rows.append((f"{title}, {when}", f"{m['val@far=0.001']:.3f}", f"{m['val@far=0.01']:.3f}",
                         f"{m['nn_accuracy']:.3f}"))
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]

    def line(row):
        return "  ".join([row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])])

    lines = [line(header), "-" * len(line(header))] + [line(row) for row in rows]
    curve = summary.loss_curve
    loss = f"loss {curve[0][1]:.4f} -> {curve[-1][1]:.4f}" if curve else "no loss"
    lines.append(f"{summary.steps_taken} steps taken, {summary.skipped_batches} batches skipped "
                 f"(no semi-hard triplet), {summary.mean_triplets:.1f} triplets per batch on average; {loss}; "
                 f"{summary.wall_time_s:.0f} s")
    return "\n".join(lines)


def parse_args(argv=None) -> Settings:
    defaults = Settings()
    p = argparse.ArgumentParser(
        prog="python -m reference.facenet.train",
        description="Train a small embedding network with the reference online semi-hard triplet loss on "
                    "scikit-learn's 8x8 digits 0-6 and report VAL@FAR on the unseen digits 7-9, before and "
                    "after training.")
    p.add_argument("--steps", type=int, default=defaults.steps, help="training steps (default %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    p.add_argument("--batch-identities", type=int, default=defaults.batch_identities, metavar="P",
                   help="identities per batch, at most 7 (default %(default)s)")
    p.add_argument("--images-per-identity", type=int, default=defaults.images_per_identity, metavar="K",
                   help="images of each identity per batch (default %(default)s)")
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (default %(default)s)")
    p.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim,
                   help="embedding size (default %(default)s)")
    p.add_argument("--threads", type=int, default=defaults.threads,
                   help="torch CPU threads (default %(default)s)")
    p.add_argument("--out", help="write the settings and the results to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no printed summary")
    args = vars(p.parse_args(argv))
    return Settings(**{f.name: args.get(f.name, getattr(defaults, f.name)) for f in fields(Settings)})


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
