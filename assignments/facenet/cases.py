"""Graded cases of the FaceNet triplet-loss homework.

Mined triplets are judged as a set of rows: any order of the rows is right. Ties are tested on
embeddings whose distances are exact in floating point (quarter-step grids, one-hot rows, and a
constructed batch with a negative exactly at |a - p|^2 and one exactly at |a - p|^2 + margin),
because random floats never tie and a non-strict inequality would then go unseen. The tie
distances are squares of exactly representable numbers, so that distances computed as
cdist(...)^2 stay exact too.
"""
from dataclasses import dataclass

import torch

from grader.cases import Call, Complexity, Randn, Value

DOUBLE = torch.float64


@dataclass(frozen=True)
class UnitEmbeddings:
    """[batch, dim] float64 rows on the unit hypersphere, as a FaceNet network outputs them."""
    batch: int
    dim: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        x = torch.randn(self.batch, self.dim, generator=generator, dtype=DOUBLE)
        return x / x.norm(dim=1, keepdim=True)


@dataclass(frozen=True)
class Labels:
    """[batch] identity labels in [0, identities)."""
    batch: int
    identities: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.identities, (self.batch,), generator=generator)


@dataclass(frozen=True)
class QuarterGrid:
    """[batch, dim] values in {-1, -0.75, ..., 1}: every distance is a multiple of 1/16, exact."""
    batch: int
    dim: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(-4, 5, (self.batch, self.dim), generator=generator).to(DOUBLE) / 4


@dataclass(frozen=True)
class OneHotRows:
    """[batch, dim] one-hot rows: every distance is 0 or 2, so ties are everywhere."""
    batch: int
    dim: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return torch.eye(self.dim, dtype=DOUBLE)[torch.randint(0, self.dim, (self.batch,), generator=generator)]


# Points on a line, margin 5/16. Identity 0: anchor 0, positive 0.5 (|a - p|^2 = 1/4, so the window
# is (1/4, 9/16)), with a negative at -0.5 (exactly 1/4: not farther than the positive) and one at
# -0.625 (25/64: semi-hard, mined). Identity 3, far away: anchor 10, positive 10.5, and its only
# near negative at 9.25 (exactly 9/16: not inside the margin, so the pair is dropped). A
# non-strict inequality on either side changes the mined set. Every distance is a square of an
# exactly representable number, so cdist(...)^2 computes them exactly too.
TIE_EMBEDDINGS = torch.tensor([[0.0], [0.5], [-0.5], [-0.625], [10.0], [10.5], [9.25]], dtype=DOUBLE)
TIE_LABELS = torch.tensor([0, 0, 1, 2, 3, 3, 4])
TIE_MARGIN = 0.3125


def batch(b=12, d=8, identities=3):
    return {"X": UnitEmbeddings(b, d), "y": Labels(b, identities)}


def mined_rows(triplets: torch.Tensor) -> torch.Tensor:
    """The set of (anchor, positive, negative) rows in one canonical order: rows sorted."""
    return torch.tensor(sorted(map(tuple, triplets.tolist())), dtype=torch.long).reshape(-1, 3)


def triplet_rows(expected: torch.Tensor, actual, max_rows: int = 1 << 16) -> str | None:
    """Before sorting: a [T, 3] integer tensor of a size a batch can have."""
    if type(actual) is not torch.Tensor:
        return f"got {type(actual).__name__}, expected a torch.LongTensor of shape [T, 3]"
    if actual.dim() != 2 or actual.shape[1] != 3:
        return f"shape {list(actual.shape)}, expected [T, 3]: one (anchor, positive, negative) row per triplet"
    if actual.dtype not in (torch.int64, torch.int32):
        return f"dtype {actual.dtype}, expected torch.long (indices into the batch)"
    if actual.shape[0] > max_rows:
        return f"{actual.shape[0]} rows, more than a batch of this size can have"
    return None


AS_SET = dict(derive=mined_rows, derived="the set of mined triplets (rows in any order)", derive_check=triplet_rows)


def mining_in_batch(n):
    return {"X": UnitEmbeddings(n, 8), "y": Labels(n, max(2, n // 4))}


def call(target, *args, **kwargs):
    return Call(target, args, kwargs)


CASES = [
    # distances
    Value("pairwise_distances: squared", 2, call=call("pairwise_distances", "X"), inputs={"X": Randn(10, 6)}),
    Value("pairwise_distances: not squared", 2, call=call("pairwise_distances", "X", squared=False),
          inputs={"X": Randn(10, 6)}),
    Value("pairwise_distances: gradients, with two equal rows", 2,
          call=Call("pairwise_distances", ("X",), {"squared": False}, grad=("X",)),
          inputs={"X": QuarterGrid(6, 3), "dOut": Randn(6, 6)},
          feedback="the gradient of sqrt is infinite at 0: take the square root only where the squared distance "
                   "is positive (the diagonal is always 0)"),
    Value("pairwise_distances, bigger batch", 1, visibility="hidden", call=call("pairwise_distances", "X"),
          inputs={"X": Randn(33, 16, scale=3.0)}),

    # the loss of given triplets
    Value("triplet_loss", 2, call=call("triplet_loss", "A", "P", "N"),
          inputs={"A": Randn(20, 4, scale=0.3), "P": Randn(20, 4, scale=0.3), "N": Randn(20, 4, scale=0.3)}),
    Value("triplet_loss: another margin, gradients", 2,
          call=Call("triplet_loss", ("A", "P", "N"), {"margin": 0.5}, grad=("A", "P", "N")),
          inputs={"A": Randn(20, 4, scale=0.3), "P": Randn(20, 4, scale=0.3), "N": Randn(20, 4, scale=0.3),
                  "dOut": Randn()}),

    # mining
    Value("semi_hard_triplets", 3, call=call("semi_hard_triplets", "X", "y"), inputs=batch(), **AS_SET),
    Value("semi_hard_triplets: exact ties on a quarter-step grid", 3, call=call("semi_hard_triplets", "X", "y"),
          inputs={"X": QuarterGrid(16, 2), "y": Labels(16, 3)}, **AS_SET,
          feedback="a negative exactly as far as the positive is not semi-hard: |a-p|^2 < |a-n|^2, strictly"),
    Value("semi_hard_triplets: one-hot rows", 1, call=call("semi_hard_triplets", "X", "y", margin=2.5),
          inputs={"X": OneHotRows(10, 4), "y": Labels(10, 3)}, **AS_SET),
    Value("semi_hard_triplets: negatives exactly on both edges of the window", 2,
          call=call("semi_hard_triplets", "X", "y", margin=TIE_MARGIN),
          inputs={"X": TIE_EMBEDDINGS, "y": TIE_LABELS}, **AS_SET,
          feedback="semi-hard means |a-p|^2 < |a-n|^2 < |a-p|^2 + margin, both inequalities strict"),
    Value("semi_hard_triplets: one identity, no triplet", 1, call=call("semi_hard_triplets", "X", "y"),
          inputs={"X": UnitEmbeddings(6, 4), "y": torch.zeros(6, dtype=torch.long)}, **AS_SET,
          feedback="with no triplet, return an empty LongTensor of shape [0, 3]"),
    Value("semi_hard_triplets, bigger batch", 2, visibility="hidden", call=call("semi_hard_triplets", "X", "y"),
          inputs=batch(40, 16, 5), **AS_SET),

    # online losses
    Value("online_semi_hard_triplet_loss", 3, call=call("online_semi_hard_triplet_loss", "X", "y"), inputs=batch()),
    Value("online_semi_hard_triplet_loss: gradients", 2,
          call=Call("online_semi_hard_triplet_loss", ("X", "y"), grad=("X",)), inputs={**batch(), "dOut": Randn()}),
    Value("online_semi_hard_triplet_loss: exact ties", 1, call=call("online_semi_hard_triplet_loss", "X", "y"),
          inputs={"X": QuarterGrid(16, 2), "y": Labels(16, 3)}),
    Value("online_semi_hard_triplet_loss: no triplet is 0, not NaN", 1,
          call=Call("online_semi_hard_triplet_loss", ("X", "y"), grad=("X",)),
          inputs={"X": UnitEmbeddings(6, 4), "y": torch.zeros(6, dtype=torch.long), "dOut": Randn()},
          feedback="with no triplet the loss is 0 and its gradient is zero (the mean of nothing is NaN)"),
    Value("online_semi_hard_triplet_loss, bigger batch", 2, visibility="hidden",
          call=call("online_semi_hard_triplet_loss", "X", "y"), inputs=batch(40, 16, 5)),
    Value("batch_hard_triplet_loss", 2, call=call("batch_hard_triplet_loss", "X", "y"),
          inputs={"X": UnitEmbeddings(12, 8), "y": torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 4])}),
    Value("batch_hard_triplet_loss: gradients", 1, call=Call("batch_hard_triplet_loss", ("X", "y"), grad=("X",)),
          inputs={**batch(), "dOut": Randn()}),
    Value("batch_hard_triplet_loss: one identity is 0", 1, call=call("batch_hard_triplet_loss", "X", "y"),
          inputs={"X": UnitEmbeddings(6, 4), "y": torch.zeros(6, dtype=torch.long)}),

    # mining must run on the whole batch at once
    Complexity("semi_hard_triplets runs on the whole batch at once", 2,
               call=call("semi_hard_triplets", "X", "y"), inputs_at=mining_in_batch, sizes=(16, 32, 64, 128),
               max_exponent=3.3, max_operation_exponent=0.5, derive=mined_rows),
]
