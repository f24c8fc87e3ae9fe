"""FaceNet's triplet loss and online semi-hard triplet mining (Schroff et al. 2015, section 3.2).

Embeddings f(x) live on the unit hypersphere, distances are squared L2, and a triplet
(anchor a, positive p of the same identity, negative n of another identity) costs

    [ |f(a) - f(p)|^2 - |f(a) - f(n)|^2 + alpha ]_+        with margin alpha = 0.2.

Triplets are mined inside the batch: every ordered pair of distinct images of one identity is
an anchor-positive pair, and its negative is semi-hard: farther from the anchor than the
positive, strictly, yet inside the margin,

    |f(a) - f(p)|^2 < |f(a) - f(n)|^2 < |f(a) - f(p)|^2 + alpha,

and of those the closest. A pair with no semi-hard negative is dropped.

Every function takes embeddings [B, D] and integer labels [B], must work on the whole batch at
once (no Python loop over the batch: a case measures how the number of operations grows with B),
and must be differentiable in the embeddings. When no triplet exists, the online losses are 0
(with a zero gradient), never NaN.
"""
import torch

MARGIN = 0.2


def pairwise_distances(embeddings: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """[B, D] -> [B, B]: |x_i - x_j|^2, or |x_i - x_j| with squared=False.

    Use the embeddings as given. The non-squared distance must have a finite gradient where two
    rows are equal (on the diagonal, for one): the gradient of sqrt is infinite at 0."""
    raise NotImplementedError


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float = MARGIN) -> torch.Tensor:
    """Mean over the batch of [|a - p|^2 - |a - n|^2 + margin]_+ for rows a, p, n of [T, D]."""
    raise NotImplementedError


def semi_hard_triplets(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """(anchor, positive, negative) indices, a LongTensor [T, 3]: for every ordered pair of
    distinct images of one identity, the semi-hard negative closest to the anchor; pairs with
    none are dropped. Any order of the rows is accepted; with no triplet, return an empty
    LongTensor of shape [0, 3]."""
    raise NotImplementedError


def online_semi_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                                  margin: float = MARGIN) -> torch.Tensor:
    """Mean of the triplet loss over the semi-hard triplets mined in the batch; 0 without any."""
    raise NotImplementedError


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """Mean over anchors of [max_p |a - p|^2 - min_n |a - n|^2 + margin]_+, over the anchors that
    have both a positive (another image of their identity) and a negative; 0 without any."""
    raise NotImplementedError
