"""Independent checks of the FaceNet triplet reference (reference/facenet/triplet.py).

The oracle is a brute force written in this module: Python loops over every (anchor, positive,
negative) index triple, squared distances as explicit sums over coordinates of Python floats,
semi-hard meaning d_ap < d_an < d_ap + margin (both strict), for each ordered anchor-positive
pair the semi-hard negative with the smallest distance (ties to the lowest index), pairs without
one dropped, the loss the mean hinge over the mined triplets (0 without any). Gradients are
checked against the same brute force built from 0-dim torch ops on the same triplets.

Everything is float64 with fixed seeds. Exact ties are made with embeddings on a quarter- or
eighth-step grid (or one-hot rows): every squared distance is then a sum of dyadic rationals,
exact in binary floating point, so d_an == d_ap and d_an == d_ap + margin really happen and a
non-strict comparison would be caught.

Other implementations, and how they differ from the reference (asserted at the end):

pytorch-metric-learning (2.x; a test dependency, never imported while grading)
  * distances.LpDistance() normalizes the embeddings to the unit sphere and is NOT squared
    (normalize_embeddings=True, p=2, power=1). LpDistance(normalize_embeddings=False, power=2)
    is the reference's squared distance (torch.cdist(x, x) ** 2).
  * miners.TripletMarginMiner(type_of_triplets="semihard") keeps every triplet with
    0 < d_an - d_ap <= margin: the lower bound is strict like the reference's, the upper one is
    NOT (a negative at exactly d_ap + margin is mined, with a hinge of 0). It returns ALL such
    negatives of a pair, not the closest one; the set of pairs with at least one is the same.
  * losses.TripletMarginLoss has margin 0.05 by default and reduces with AvgNonZeroReducer: the
    mean over the triplets whose hinge is > 0 only (0 if none). On the reference's own triplets
    every hinge is > 0, so that equals the reference's mean; on triplets with a zero hinge it
    does not, and MeanReducer is then the reference's reduction.

TensorFlow Addons (tfa.losses.triplet_semihard_loss; not installed, its rule is re-stated in a
few lines below)
  * distance_metric="L2" (the default since TFA 0.11) is the non-squared distance;
    "squared-L2" is the reference's (tf.contrib and TFA before 0.11 used the squared one).
  * margin defaults to 1.0.
  * for every positive pair it takes the closest negative farther than the positive, with no
    upper bound (a pair whose closest farther negative is beyond the margin adds a 0 hinge), and
    when no negative is farther than the positive it falls back to the anchor's LARGEST negative
    distance, a hinge >= margin. The reference drops such a pair.
  * the sum of hinges is divided by the number of positive pairs, mined or not.
"""
import math
from types import SimpleNamespace

import pytest
import torch

from reference.facenet.triplet import (
    MARGIN,
    batch_hard_triplet_loss,
    online_semi_hard_triplet_loss,
    pairwise_distances,
    semi_hard_triplets,
    triplet_loss,
)

f64 = torch.float64
EXACT = dict(rtol=0, atol=0)
CLOSE = dict(rtol=1e-12, atol=1e-12)
GRAD = dict(rtol=1e-10, atol=1e-10)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_batch(B, D, identities, seed, normalize=True):
    """Embeddings [B, D] float64 (on the unit sphere unless normalize=False) and labels [B] drawn
    from `identities` identities, so that some identities may have one image or none."""
    x = torch.randn(B, D, generator=gen(seed), dtype=f64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    labels = torch.randint(0, identities, (B,), generator=gen(seed + 1000))
    return x, labels


def grid_batch(B, D, identities, seed, step=0.25):
    """Embeddings with coordinates in {-1, -1 + step, ..., 1}: all distances are exact, and ties
    and boundary cases (d_an == d_ap, d_an == d_ap + margin) are frequent."""
    steps = round(1 / step)
    x = torch.randint(-steps, steps + 1, (B, D), generator=gen(seed)).to(f64) * step
    labels = torch.randint(0, identities, (B,), generator=gen(seed + 1000))
    return x, labels


# --------------------------------------------------------------------------- the brute force


def bf_distances(x):
    """Squared distances as a list of lists of Python floats, by an explicit sum over coordinates."""
    rows = x.tolist()
    return [[sum((u - v) ** 2 for u, v in zip(ri, rj)) for rj in rows] for ri in rows]


def bf_positive_pairs(labels):
    """Every ordered pair (a, p), a != p, of one identity, by anchor then positive."""
    labels = labels.tolist()
    B = len(labels)
    return [(a, p) for a in range(B) for p in range(B) if a != p and labels[a] == labels[p]]


def bf_all_semi_hard(d, labels, margin, upper_inclusive=False):
    """Every (a, p, n) with a != p of one identity, n of another, d_ap < d_an < d_ap + margin
    (<= with upper_inclusive, pytorch-metric-learning's rule), by anchor, positive, negative."""
    lab = labels.tolist()
    found = []
    for a, p in bf_positive_pairs(labels):
        for n in range(len(lab)):
            if lab[n] == lab[a]:
                continue
            inside = d[a][n] <= d[a][p] + margin if upper_inclusive else d[a][n] < d[a][p] + margin
            if d[a][p] < d[a][n] and inside:
                found.append((a, p, n))
    return found


def bf_semi_hard(d, labels, margin):
    """Per pair, the semi-hard negative with the smallest distance, the lowest index on a tie."""
    chosen = {}
    for a, p, n in bf_all_semi_hard(d, labels, margin):   # n increasing within a pair
        if (a, p) not in chosen or d[a][n] < d[a][chosen[a, p]]:
            chosen[a, p] = n
    return [(a, p, chosen[a, p]) for a, p in bf_positive_pairs(labels) if (a, p) in chosen]


def bf_loss(d, triplets, margin):
    """Mean hinge over the triplets, 0 without any."""
    if not triplets:
        return 0.0
    return sum(max(d[a][p] - d[a][n] + margin, 0.0) for a, p, n in triplets) / len(triplets)


def bf_batch_hard_choices(d, labels):
    """{anchor: (tied hardest positives, tied hardest negatives)} for each anchor with both."""
    lab = labels.tolist()
    B = len(lab)
    choices = {}
    for a in range(B):
        positives = [p for p in range(B) if p != a and lab[p] == lab[a]]
        negatives = [n for n in range(B) if lab[n] != lab[a]]
        if positives and negatives:
            far = max(d[a][p] for p in positives)
            near = min(d[a][n] for n in negatives)
            choices[a] = ([p for p in positives if d[a][p] == far], [n for n in negatives if d[a][n] == near])
    return choices


def bf_batch_hard_loss(d, labels, margin):
    choices = bf_batch_hard_choices(d, labels)
    if not choices:
        return 0.0
    hinges = [max(d[a][ps[0]] - d[a][ns[0]] + margin, 0.0) for a, (ps, ns) in choices.items()]
    return sum(hinges) / len(hinges)


def torch_squared_distance(x, i, j):
    """|x_i - x_j|^2 from 0-dim torch ops, coordinate by coordinate: differentiable in x."""
    total = x.new_zeros(())
    for k in range(x.shape[1]):
        total = total + (x[i, k] - x[j, k]) ** 2
    return total


def torch_bf_triplet_loss(x, triplets, margin):
    """The brute-force loss of the given triplets, differentiable in x."""
    if not triplets:
        return (x * 0).sum()
    hinges = [torch.relu(torch_squared_distance(x, a, p) - torch_squared_distance(x, a, n) + margin)
              for a, p, n in triplets]
    return sum(hinges) / len(hinges)


def torch_bf_batch_hard_loss(x, labels, margin):
    """Batch-hard loss, differentiable in x. Tied hardest positives (negatives) enter as the
    average of their distances: the same value, and the gradient split evenly among them, which
    is what torch.amax/amin do in the reference. Without ties it is the plain hardest one."""
    choices = bf_batch_hard_choices(bf_distances(x), labels)
    if not choices:
        return (x * 0).sum()
    hinges = []
    for a, (ps, ns) in choices.items():
        far = sum(torch_squared_distance(x, a, p) for p in ps) / len(ps)
        near = sum(torch_squared_distance(x, a, n) for n in ns) / len(ns)
        hinges.append(torch.relu(far - near + margin))
    return sum(hinges) / len(hinges)


def as_rows(triplets):
    """LongTensor [T, 3] -> list of (a, p, n) tuples."""
    return [tuple(row) for row in triplets.tolist()]


def check_against_brute_force(x, labels, margin):
    """Mined triplets (as a set, then in the documented order), the online loss and the
    batch-hard loss equal the brute force's. Returns the brute-force triplets."""
    d = bf_distances(x)
    expected = bf_semi_hard(d, labels, margin)
    mined = semi_hard_triplets(x, labels, margin)
    assert mined.dtype == torch.long and mined.shape == (len(expected), 3)
    assert set(as_rows(mined)) == set(expected)
    assert as_rows(mined) == expected          # by anchor, then positive
    loss = online_semi_hard_triplet_loss(x, labels, margin)
    assert loss.shape == () and torch.isfinite(loss)
    assert math.isclose(loss.item(), bf_loss(d, expected, margin), rel_tol=1e-12, abs_tol=1e-12)
    hard = batch_hard_triplet_loss(x, labels, margin)
    assert math.isclose(hard.item(), bf_batch_hard_loss(d, labels, margin), rel_tol=1e-12, abs_tol=1e-12)
    return expected


def grad_of(loss_fn, x, *args):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x, *args), x)
    return g


# --------------------------------------------------------------------------- pairwise distances


@pytest.mark.parametrize("normalize", [True, False], ids=["sphere", "raw"])
def test_pairwise_distances_match_explicit_sums(normalize):
    x, _ = random_batch(9, 5, 3, seed=1, normalize=normalize)
    expected = torch.tensor(bf_distances(x), dtype=f64)
    torch.testing.assert_close(pairwise_distances(x), expected, **CLOSE)
    torch.testing.assert_close(pairwise_distances(x, squared=False), expected.sqrt(), **CLOSE)
    assert torch.equal(pairwise_distances(x).diagonal(), torch.zeros(9, dtype=f64))


def test_non_squared_distance_gradient_is_finite_at_equal_rows_and_diagonal():
    # sqrt'(0) is infinite: a naive sqrt would put NaN into the gradient through the zero diagonal
    # and through rows 0 and 3, which are equal. The analytical gradient of sum_ij |x_i - x_j|
    # is 2 sum_{j: x_j != x_i} (x_i - x_j) / |x_i - x_j|; the zero distances contribute nothing.
    x, _ = random_batch(5, 3, 1, seed=2, normalize=False)
    x[3] = x[0]
    g = grad_of(lambda y: pairwise_distances(y, squared=False).sum(), x)
    assert torch.isfinite(g).all()
    d = bf_distances(x)
    expected = torch.zeros_like(x)
    for i in range(5):
        for j in range(5):
            if d[i][j] > 0:
                expected[i] += 2 * (x[i] - x[j]) / math.sqrt(d[i][j])
    torch.testing.assert_close(g, expected, **GRAD)


def test_non_squared_distance_gradient_is_zero_when_all_rows_are_equal():
    x = torch.full((4, 3), 0.3, dtype=f64)
    g = grad_of(lambda y: pairwise_distances(y, squared=False).sum(), x)
    assert torch.equal(g, torch.zeros_like(x))


def test_triplet_loss_is_the_mean_hinge():
    x, _ = random_batch(9, 4, 1, seed=3)
    a, p, n = x[0:3], x[3:6], x[6:9]
    d = bf_distances(x)
    for margin in (MARGIN, 0.0, 2.0):
        expected = bf_loss(d, [(i, 3 + i, 6 + i) for i in range(3)], margin)
        assert math.isclose(triplet_loss(a, p, n, margin).item(), expected, rel_tol=1e-12, abs_tol=1e-12)
    assert triplet_loss(a, p, n).item() == triplet_loss(a, p, n, MARGIN).item()


# --------------------------------------------------------------------------- mining vs brute force

# (B, D, identities, margin, normalize): small and larger batches, many identities (so some have
# one image), a large margin (more semi-hard negatives per pair) and raw, unnormalized embeddings.
RANDOM_CASES = {
    "B8_D2_ids2": (8, 2, 2, MARGIN, True),
    "B12_D3_ids3": (12, 3, 3, MARGIN, True),
    "B16_D4_ids4": (16, 4, 4, MARGIN, True),
    "B24_D8_ids5": (24, 8, 5, MARGIN, True),
    "B20_D16_ids10": (20, 16, 10, MARGIN, True),
    "B16_D3_ids3_m1": (16, 3, 3, 1.0, True),
    "B14_D4_ids3_raw": (14, 4, 3, 0.5, False),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(RANDOM_CASES))
def test_random_batches_match_brute_force(case, seed):
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=10 * seed + B, normalize=normalize)
    check_against_brute_force(x, labels, margin)


def test_random_batches_exercise_mining():
    # Guard on the parametrization above: across it, triplets are mined, pairs are dropped, and
    # some pair has several semi-hard negatives to choose the closest from.
    mined = dropped = several = 0
    for B, D, identities, margin, normalize in RANDOM_CASES.values():
        for seed in (0, 1):
            x, labels = random_batch(B, D, identities, seed=10 * seed + B, normalize=normalize)
            d = bf_distances(x)
            triplets = bf_semi_hard(d, labels, margin)
            mined += len(triplets)
            dropped += len(bf_positive_pairs(labels)) - len(triplets)
            pairs = [(a, p) for a, p, _ in bf_all_semi_hard(d, labels, margin)]
            several += len(pairs) - len(set(pairs))
    assert mined > 50 and dropped > 50 and several > 50


@pytest.mark.parametrize("seed", range(4))
def test_quarter_grid_ties_match_brute_force(seed):
    # margin 0.25 = 4/16 on distances that are multiples of 1/16: exact ties d_an == d_ap and
    # exact boundaries d_an == d_ap + margin both occur (checked), and a non-strict comparison
    # on either side would mine a different set.
    margin = 0.25
    x, labels = grid_batch(14, 3, 3, seed=seed)
    d = bf_distances(x)
    lab = labels.tolist()
    triples = [(a, p, n) for a, p in bf_positive_pairs(labels) for n in range(len(lab)) if lab[n] != lab[a]]
    assert any(d[a][n] == d[a][p] for a, p, n in triples)
    assert any(d[a][n] == d[a][p] + margin for a, p, n in triples)
    check_against_brute_force(x, labels, margin)


@pytest.mark.parametrize("margin", [MARGIN, 2.0, 2.5])
def test_one_hot_rows_match_brute_force(margin):
    # One-hot rows: squared distances are 0 (same row) or 2. With margin 2.0 a negative at 2 sits
    # exactly at d_ap + margin for a positive at 0 (excluded); with 2.5 it is semi-hard; with 0.2
    # nothing is. Many negatives tie at 2: the lowest index must win.
    hot = torch.tensor([0, 0, 1, 2, 1, 0, 3, 3, 2, 1])
    x = torch.nn.functional.one_hot(hot, 4).to(f64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    expected = check_against_brute_force(x, labels, margin)
    assert (len(expected) > 0) == (margin == 2.5)


# Eighth-step points on a line: anchor 0 at 0 and its positive 1 at 0.375 (d_ap = 9/64), margin
# 0.25 = 16/64. Each negative is its own identity (so no other pair exists):
#   "tie"      at -0.375: d_an = 9/64  = d_ap            -> not semi-hard (needs d_an > d_ap)
#   "boundary" at  0.625: d_an = 25/64 = d_ap + margin   -> not semi-hard (needs d_an < d_ap + margin)
#   "inside"   at  0.5:   d_an = 16/64                   -> semi-hard
# The reverse pair (anchor 1, positive 0) has no semi-hard negative: it is dropped.
LINE_MARGIN = 0.25
LINE_POINTS = {"tie": -0.375, "boundary": 0.625, "inside": 0.5}


def line_batch(*negatives):
    coords = [0.0, 0.375] + [LINE_POINTS[name] for name in negatives]
    return torch.tensor(coords, dtype=f64)[:, None], torch.tensor([0, 0] + list(range(1, len(negatives) + 1)))


@pytest.mark.parametrize("negatives, expected", [
    (("tie",), []),
    (("boundary",), []),
    (("tie", "boundary"), []),
    (("tie", "boundary", "inside"), [(0, 1, 4)]),
    (("inside", "boundary", "tie"), [(0, 1, 2)]),
], ids=["tie", "boundary", "tie_boundary", "all", "all_reordered"])
def test_constructed_boundaries_are_strict(negatives, expected):
    x, labels = line_batch(*negatives)
    d = bf_distances(x)
    if "tie" in negatives:
        assert d[0][2 + negatives.index("tie")] == d[0][1]
    if "boundary" in negatives:
        assert d[0][2 + negatives.index("boundary")] == d[0][1] + LINE_MARGIN   # exact, not approximately
    assert check_against_brute_force(x, labels, LINE_MARGIN) == expected
    loss = online_semi_hard_triplet_loss(x, labels, LINE_MARGIN)
    assert loss.item() == (9 / 64 - 16 / 64 + LINE_MARGIN if expected else 0.0)


def test_closest_semi_hard_negative_tie_goes_to_lowest_index():
    # Two semi-hard negatives at the same distance on either side of the anchor, in both orders.
    x = torch.tensor([[0.0], [0.375], [0.5], [-0.5], [0.25]], dtype=f64)
    labels = torch.tensor([0, 0, 1, 2, 3])
    assert as_rows(semi_hard_triplets(x, labels, LINE_MARGIN)) == [(0, 1, 2)]
    perm = torch.tensor([0, 1, 3, 2, 4])
    assert as_rows(semi_hard_triplets(x[perm], labels, LINE_MARGIN)) == [(0, 1, 2)]
    check_against_brute_force(x, labels, LINE_MARGIN)


# --------------------------------------------------------------------------- degenerate batches


def assert_zero_loss_with_zero_gradient(loss_fn, x, labels):
    """Exactly +0 (not -0, not NaN), still connected to x, with a zero gradient."""
    x = x.clone().requires_grad_(True)
    loss = loss_fn(x, labels)
    assert loss.item() == 0.0 and not torch.signbit(loss)
    (g,) = torch.autograd.grad(loss, x)
    assert torch.equal(g, torch.zeros_like(x))


def test_single_identity_has_no_triplet():
    x, _ = random_batch(6, 3, 1, seed=5)
    labels = torch.zeros(6, dtype=torch.long)
    assert check_against_brute_force(x, labels, MARGIN) == []
    assert semi_hard_triplets(x, labels).shape == (0, 3)
    assert_zero_loss_with_zero_gradient(online_semi_hard_triplet_loss, x, labels)
    # no anchor has a negative: batch hard has no term either
    assert_zero_loss_with_zero_gradient(batch_hard_triplet_loss, x, labels)


@pytest.mark.parametrize("B", [1, 5])
def test_all_identities_with_one_image_have_no_triplet(B):
    x, _ = random_batch(B, 3, 1, seed=6)
    labels = torch.arange(B)
    assert check_against_brute_force(x, labels, MARGIN) == []
    assert semi_hard_triplets(x, labels).shape == (0, 3)
    assert_zero_loss_with_zero_gradient(online_semi_hard_triplet_loss, x, labels)
    assert_zero_loss_with_zero_gradient(batch_hard_triplet_loss, x, labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identities_with_one_image_are_only_negatives(seed):
    # Identities 2, 3 and 4 have one image: never an anchor or a positive, but still a negative.
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 0, 1])
    x, _ = random_batch(10, 2, 1, seed=seed)
    expected = check_against_brute_force(x, labels, 1.0)
    assert expected and all(a not in (5, 6, 7) and p not in (5, 6, 7) for a, p, _ in expected)
    assert any(n in (5, 6, 7) for _, _, n in expected)
    hard = batch_hard_triplet_loss(x, labels, MARGIN)
    assert hard.item() == pytest.approx(bf_batch_hard_loss(bf_distances(x), labels, MARGIN), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 2, 3]], ids=["pairs", "singletons"])
def test_all_equal_embeddings(labels):
    # Every distance is 0: 0 < 0 is false, so nothing is semi-hard, and the online loss is 0
    # with a zero gradient. Batch hard still counts: every anchor with a positive costs margin.
    labels = torch.tensor(labels)
    x = torch.full((6, 4), 0.5, dtype=f64)
    assert check_against_brute_force(x, labels, MARGIN) == []
    assert_zero_loss_with_zero_gradient(online_semi_hard_triplet_loss, x, labels)
    hard = batch_hard_triplet_loss(x, labels, MARGIN)
    assert hard.item() == pytest.approx(MARGIN, abs=1e-15)
    g = grad_of(batch_hard_triplet_loss, x, labels, MARGIN)
    assert torch.equal(g, torch.zeros_like(x))
    g = grad_of(lambda y: pairwise_distances(y, squared=False).sum(), x)
    assert torch.equal(g, torch.zeros_like(x))


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("case", sorted(RANDOM_CASES))
def test_online_semi_hard_gradient_matches_brute_force(case):
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=B, normalize=normalize)
    triplets = bf_semi_hard(bf_distances(x), labels, margin)
    assert triplets
    expected = grad_of(torch_bf_triplet_loss, x, triplets, margin)
    torch.testing.assert_close(grad_of(online_semi_hard_triplet_loss, x, labels, margin), expected, **GRAD)


@pytest.mark.parametrize("case", sorted(RANDOM_CASES))
def test_batch_hard_gradient_matches_brute_force(case):
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=B, normalize=normalize)
    expected = grad_of(torch_bf_batch_hard_loss, x, labels, margin)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(grad_of(batch_hard_triplet_loss, x, labels, margin), expected, **GRAD)


@pytest.mark.parametrize("seed", [101, 103])
def test_gradients_on_quarter_grid_ties(seed):
    # At exact ties the online loss's gradient follows the mined (lowest-index) negative, and
    # batch hard's is split evenly among tied hardest positives / negatives (torch.amax/amin):
    # one valid subgradient among several, pinned here because it is the reference's (a
    # max(dim)/argmax implementation gives it all to one of them). The seeds are chosen so that
    # both kinds of tie occur on an anchor whose hinge is positive (checked).
    x, labels = grid_batch(12, 2, 3, seed=seed)
    d = bf_distances(x)
    active = [(ps, ns) for a, (ps, ns) in bf_batch_hard_choices(d, labels).items() if d[a][ps[0]] - d[a][ns[0]] + 1.0 > 0]
    assert any(len(ps) > 1 for ps, _ in active) and any(len(ns) > 1 for _, ns in active)
    triplets = bf_semi_hard(d, labels, 0.25)
    torch.testing.assert_close(grad_of(online_semi_hard_triplet_loss, x, labels, 0.25),
                               grad_of(torch_bf_triplet_loss, x, triplets, 0.25), **GRAD)
    torch.testing.assert_close(grad_of(batch_hard_triplet_loss, x, labels, 1.0),
                               grad_of(torch_bf_batch_hard_loss, x, labels, 1.0), **GRAD)


def test_mining_carries_no_gradient():
    # The indices come from detached distances; the loss's gradient is the hinge's alone
    # (checked above), and mining itself must not require grad.
    x, labels = random_batch(10, 3, 3, seed=7)
    mined = semi_hard_triplets(x.clone().requires_grad_(True), labels)
    assert not mined.requires_grad and mined.dtype == torch.long


# --------------------------------------------------------------------------- pytorch-metric-learning


@pytest.fixture(scope="module")
def pml():
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import distances, losses, miners, reducers

    return SimpleNamespace(distances=distances, losses=losses, miners=miners, reducers=reducers)


def squared_lp(pml):
    """The reference's distance in PML terms: no normalization, L2 to the power 2."""
    return pml.distances.LpDistance(normalize_embeddings=False, p=2, power=2)


def pml_semi_hard(pml, x, labels, margin):
    a, p, n = pml.miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=squared_lp(pml))(x, labels)
    return list(zip(a.tolist(), p.tolist(), n.tolist()))


def test_pml_default_distance_is_normalized_and_not_squared(pml):
    x, _ = random_batch(8, 4, 1, seed=8, normalize=False)
    x = 3 * x   # far from the unit sphere
    default = pml.distances.LpDistance()(x)
    unit = x / x.norm(dim=1, keepdim=True)
    torch.testing.assert_close(default, pairwise_distances(unit, squared=False), **CLOSE)
    off = ~torch.eye(8, dtype=torch.bool)
    assert not torch.allclose(default[off], pairwise_distances(x)[off])
    assert not torch.allclose(default[off], pairwise_distances(x, squared=False)[off])
    # the comparable setting
    torch.testing.assert_close(squared_lp(pml)(x), pairwise_distances(x), **CLOSE)
    # and PML's default margins: 0.05 for the loss, 0.2 for the miner
    assert pml.losses.TripletMarginLoss().margin == 0.05
    assert pml.miners.TripletMarginMiner().margin == 0.2
    assert isinstance(pml.losses.TripletMarginLoss().reducer, pml.reducers.AvgNonZeroReducer)


@pytest.mark.parametrize("case", ["B12_D3_ids3", "B16_D4_ids4", "B24_D8_ids5", "B16_D3_ids3_m1", "B14_D4_ids3_raw"])
def test_pml_semihard_miner_returns_all_semi_hard_negatives(pml, case):
    # PML's miner returns every semi-hard negative of a pair; the reference's choice is the
    # closest of them (lowest index on a tie), and the pairs with at least one are the same.
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=B, normalize=normalize)
    theirs = pml_semi_hard(pml, x, labels, margin)
    d = bf_distances(x)
    assert sorted(theirs) == bf_all_semi_hard(d, labels, margin)
    ours = as_rows(semi_hard_triplets(x, labels, margin))
    by_pair = {}
    for a, p, n in theirs:
        by_pair.setdefault((a, p), []).append(n)
    assert {(a, p) for a, p, _ in ours} == set(by_pair)
    assert any(len(ns) > 1 for ns in by_pair.values())
    for a, p, n in ours:
        closest = min(d[a][m] for m in by_pair[a, p])
        assert n == min(m for m in by_pair[a, p] if d[a][m] == closest)


@pytest.mark.parametrize("seed", range(3))
def test_pml_semihard_upper_bound_is_inclusive_on_exact_grid(pml, seed):
    # On a line with quarter steps, torch.cdist and its square are exact, so PML's distances equal
    # ours bit for bit; then PML's semihard set is exactly d_ap < d_an <= d_ap + margin.
    x, labels = grid_batch(16, 1, 3, seed=200 + seed)
    assert torch.equal(squared_lp(pml)(x), pairwise_distances(x))
    d = bf_distances(x)
    theirs = sorted(pml_semi_hard(pml, x, labels, 0.25))
    assert theirs == bf_all_semi_hard(d, labels, 0.25, upper_inclusive=True)
    assert theirs != bf_all_semi_hard(d, labels, 0.25)     # the boundary does occur here
    # the reference's pairs are those with a strictly-inside negative
    ours = as_rows(semi_hard_triplets(x, labels, 0.25))
    assert {(a, p) for a, p, _ in ours} == {(a, p) for a, p, _ in bf_all_semi_hard(d, labels, 0.25)}


def test_pml_boundary_negative_is_mined_by_pml_and_dropped_by_reference(pml):
    x, labels = line_batch("tie", "boundary")
    assert torch.equal(squared_lp(pml)(x), pairwise_distances(x))
    # both exclude the tie (strict lower bound); only PML keeps the negative at d_ap + margin
    assert pml_semi_hard(pml, x, labels, LINE_MARGIN) == [(0, 1, 3)]
    assert semi_hard_triplets(x, labels, LINE_MARGIN).shape == (0, 3)


@pytest.mark.parametrize("case", ["B12_D3_ids3", "B24_D8_ids5", "B16_D3_ids3_m1", "B14_D4_ids3_raw"])
def test_pml_loss_on_reference_triplets_equals_reference(pml, case):
    # Given the reference's triplets and the squared distance, PML's TripletMarginLoss with
    # MeanReducer is the reference's loss, value and gradient. So is its default AvgNonZeroReducer
    # here, because every mined semi-hard triplet has a hinge in (0, margin).
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=B, normalize=normalize)
    mined = semi_hard_triplets(x, labels, margin)
    indices = tuple(mined.T)
    d = bf_distances(x)
    assert all(0 < d[a][p] - d[a][n] + margin < margin for a, p, n in as_rows(mined))
    for reducer in (pml.reducers.MeanReducer(), pml.reducers.AvgNonZeroReducer()):
        loss_fn = pml.losses.TripletMarginLoss(margin=margin, distance=squared_lp(pml), reducer=reducer)
        torch.testing.assert_close(loss_fn(x, labels, indices), online_semi_hard_triplet_loss(x, labels, margin), **CLOSE)
        torch.testing.assert_close(grad_of(lambda y: loss_fn(y, labels, indices), x),
                                   grad_of(online_semi_hard_triplet_loss, x, labels, margin), **GRAD)


def test_pml_default_reducer_averages_over_non_zero_hinges_only(pml):
    # PML mines (0, 1, 3) at the boundary, hinge exactly 0, and (0, 1, 4), hinge 9/64. Its default
    # reduction averages over the non-zero hinge only; the reference's mean (triplet_loss, = PML's
    # MeanReducer) counts both.
    x, labels = line_batch("tie", "boundary", "inside")
    theirs = pml_semi_hard(pml, x, labels, LINE_MARGIN)
    assert theirs == [(0, 1, 3), (0, 1, 4)]
    indices = tuple(torch.tensor(column) for column in zip(*theirs))
    default = pml.losses.TripletMarginLoss(margin=LINE_MARGIN, distance=squared_lp(pml))(x, labels, indices)
    mean = pml.losses.TripletMarginLoss(margin=LINE_MARGIN, distance=squared_lp(pml),
                                        reducer=pml.reducers.MeanReducer())(x, labels, indices)
    a, p, n = (x[list(column)] for column in zip(*theirs))
    ours = triplet_loss(a, p, n, LINE_MARGIN)
    assert default.item() == 9 / 64
    assert mean.item() == ours.item() == 9 / 128
    assert default.item() != ours.item()


def test_pml_pipeline_averages_over_every_semi_hard_negative(pml):
    # Miner + loss in PML, under the comparable distance and margin: the mean over every semi-hard
    # triplet, not over the closest one per pair. It differs from the reference's loss.
    B, D, identities, margin, _ = RANDOM_CASES["B16_D3_ids3_m1"]
    x, labels = random_batch(B, D, identities, seed=B)
    miner = pml.miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=squared_lp(pml))
    loss_fn = pml.losses.TripletMarginLoss(margin=margin, distance=squared_lp(pml))
    theirs = loss_fn(x, labels, miner(x, labels))
    d = bf_distances(x)
    assert theirs.item() == pytest.approx(bf_loss(d, bf_all_semi_hard(d, labels, margin), margin), rel=1e-12)
    assert abs(theirs.item() - online_semi_hard_triplet_loss(x, labels, margin).item()) > 1e-3


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]], ids=["one_identity", "singletons"])
def test_pml_agrees_when_there_is_nothing_to_mine(pml, labels):
    labels = torch.tensor(labels)
    x, _ = random_batch(4, 3, 1, seed=9)
    assert pml_semi_hard(pml, x, labels, MARGIN) == []
    loss_fn = pml.losses.TripletMarginLoss(margin=MARGIN, distance=squared_lp(pml))
    miner = pml.miners.TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard", distance=squared_lp(pml))
    assert loss_fn(x, labels, miner(x, labels)).item() == 0.0 == online_semi_hard_triplet_loss(x, labels).item()


# --------------------------------------------------------------------------- TensorFlow Addons


def tfa_semihard_choices(d, labels, margin):
    """TFA's triplet_semihard_loss, re-stated: {(a, p): (hinge, fell_back)} for every positive
    pair. The negative distance is the smallest d_an > d_ap (no upper bound), else the anchor's
    largest d_an; the loss is the sum of hinges over the number of positive pairs."""
    lab = labels.tolist()
    out = {}
    for a, p in bf_positive_pairs(labels):
        negatives = [d[a][n] for n in range(len(lab)) if lab[n] != lab[a]]
        outside = [v for v in negatives if v > d[a][p]]
        chosen = min(outside) if outside else max(negatives)
        out[a, p] = (max(d[a][p] - chosen + margin, 0.0), not outside)
    return out


def tfa_semihard_loss(d, labels, margin):
    hinges = [h for h, _ in tfa_semihard_choices(d, labels, margin).values()]
    return sum(hinges) / len(hinges)


def test_tfa_fallback_pair_is_dropped_by_reference():
    # Anchor 0 and positive 1 are 1 apart, the only negative is between them: no negative is
    # farther than the positive for either ordered pair. TFA falls back to the largest negative
    # distance and charges margin + d_ap - d_an > 0; the reference has no triplet and loss 0.
    x = torch.tensor([[0.0], [1.0], [0.5]], dtype=f64)
    labels = torch.tensor([0, 0, 1])
    d = bf_distances(x)
    choices = tfa_semihard_choices(d, labels, MARGIN)
    assert all(fell_back and hinge >= MARGIN for hinge, fell_back in choices.values())
    assert tfa_semihard_loss(d, labels, MARGIN) == pytest.approx(1 - 0.25 + MARGIN)
    assert semi_hard_triplets(x, labels).shape == (0, 3)
    assert online_semi_hard_triplet_loss(x, labels).item() == 0.0


@pytest.mark.parametrize("case", ["B12_D3_ids3", "B16_D4_ids4", "B24_D8_ids5", "B14_D4_ids3_raw"])
def test_tfa_rule_relative_to_reference(case):
    # With TFA's "squared-L2" and the same margin: on a pair the reference mines, TFA takes the
    # same negative; on a pair the reference drops, TFA either adds a 0 hinge (closest farther
    # negative at or beyond the margin) or falls back (hinge >= margin). TFA divides by all pairs.
    B, D, identities, margin, normalize = RANDOM_CASES[case]
    x, labels = random_batch(B, D, identities, seed=B, normalize=normalize)
    d = bf_distances(x)
    ours = {(a, p): n for a, p, n in as_rows(semi_hard_triplets(x, labels, margin))}
    choices = tfa_semihard_choices(d, labels, margin)
    fallbacks = 0
    for (a, p), (hinge, fell_back) in choices.items():
        if (a, p) in ours:
            assert not fell_back and hinge == max(d[a][p] - d[a][ours[a, p]] + margin, 0.0)
        elif fell_back:
            fallbacks += 1
            assert hinge >= margin
        else:
            assert hinge == 0.0
    assert fallbacks > 0
    reference = online_semi_hard_triplet_loss(x, labels, margin).item()
    fallback_sum = sum(h for h, fell_back in choices.values() if fell_back)
    assert tfa_semihard_loss(d, labels, margin) == pytest.approx((reference * len(ours) + fallback_sum) / len(choices), rel=1e-12)
    assert tfa_semihard_loss(d, labels, margin) > reference * len(ours) / len(choices)
