"""Smoke test of the FaceNet staff training check (reference/facenet/train.py).

VAL@FAR is checked exactly: on a small hand-made set of distances with ties, and against a brute
force sweep over every threshold. Training runs a few dozen steps on small P x K batches: the
semi-hard loss must go down, the numbers must be rates, the JSON must be written, and the trained
network must verify held-out images of its training digits better than the random one did.
"""
import json
import math

import numpy as np
import pytest
import torch

from reference.facenet import train as train_module
from reference.facenet.train import val_at_far

# Hand-made distances with ties: inside the different pairs (0.3, 0.3), and across the two sets (0.2).
SAME = [0.1, 0.2, 0.2, 0.5, 0.9]                                      # |P_same| = 5
DIFF = [0.2, 0.3, 0.3, 0.4, 0.6, 0.7, 0.8, 1.0, 1.1, 1.2]             # |P_diff| = 10


@pytest.mark.parametrize("far, val, far_achieved, threshold", [
    (0.0, 0.2, 0.0, 0.1),   # no false accept allowed: d < 0.2, so the same pairs at 0.2 are out
    (0.1, 0.6, 0.1, 0.2),   # d = 0.2 accepts the different pair at 0.2 and both same pairs at 0.2
    (0.2, 0.6, 0.1, 0.2),   # 2 allowed, but the tie at 0.3 would make 3: stay at d = 0.2
    (0.3, 0.6, 0.3, 0.3),   # both pairs at 0.3 now fit
    (0.5, 0.8, 0.5, 0.6),
    (0.05, 0.2, 0.0, 0.1),  # 0.5 false accepts allowed: rounds down to 0
    (1.0, 1.0, 1.0, 1.2),   # everything accepted
])
def test_val_at_far_on_a_hand_made_example_with_ties(far, val, far_achieved, threshold):
    result = val_at_far(np.array(SAME), np.array(DIFF), far)
    assert result["val"] == pytest.approx(val)
    assert result["far"] == pytest.approx(far_achieved)
    assert result["threshold"] == pytest.approx(threshold)
    assert result["ta"] == round(val * len(SAME)) and result["fa"] == round(far_achieved * len(DIFF))


def test_val_at_far_is_zero_when_no_threshold_is_admissible():
    # The closest pair of all is a different one: with FAR 0 no observed distance can be a threshold.
    result = val_at_far(np.array([0.5, 0.7]), np.array([0.1, 0.9]), 0.0)
    assert result == {"val": 0.0, "far": 0.0, "threshold": None, "ta": 0, "fa": 0}


def brute_force(same, diff, far):
    """VAL and FAR at the largest observed distance d with FAR(d) <= far (None: no such d, VAL 0)."""
    best = (0.0, 0.0, None)
    for d in sorted(set(same) | set(diff)):
        far_d = sum(x <= d for x in diff) / len(diff)
        if far_d <= far:
            best = (sum(x <= d for x in same) / len(same), far_d, d)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_val_at_far_matches_a_brute_force_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    # Few distinct values, so that ties within and across the two sets are common.
    same = rng.integers(0, 12, size=int(rng.integers(1, 40))).astype(float) / 4
    diff = rng.integers(3, 20, size=int(rng.integers(1, 300))).astype(float) / 4
    for far in (0.0, 1e-3, 1e-2, 0.05, 0.1, 0.3, 0.7, 1.0, 1 / len(diff), 3 / len(diff)):
        result = val_at_far(same, diff, far)
        val, far_achieved, threshold = brute_force(same.tolist(), diff.tolist(), far)
        assert (result["val"], result["far"], result["threshold"]) == (val, far_achieved, threshold), far
        assert 0.0 <= result["val"] <= 1.0 and result["far"] <= far


def test_val_at_far_needs_both_kinds_of_pairs():
    with pytest.raises(ValueError):
        val_at_far(np.array([]), np.array([0.1]), 1e-3)
    with pytest.raises(ValueError):
        val_at_far(np.array([0.1]), np.array([]), 1e-3)
    with pytest.raises(ValueError):
        val_at_far(np.array([0.1]), np.array([0.2]), -0.1)


def test_pair_distances_split_the_pairs_i_below_j_by_identity():
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    same, diff = train_module.pair_distances(embeddings, labels)
    assert sorted(same.tolist()) == [1.0, 4.0]                  # (0, 1), (2, 3): squared distances
    assert sorted(diff.tolist()) == [0.0, 1.0, 4.0, 5.0]        # (0, 2), (0, 3), (1, 2), (1, 3)
    # Nearest other point: 0 -> 3 (other label), 1 -> 0 (tie with 3 at distance 1: the lower index,
    # same label), 2 -> 0 (tie with 3 at 4: other label), 3 -> 0 (other label).
    assert train_module.nearest_neighbour_accuracy(embeddings, labels) == pytest.approx(0.25)


def test_pk_sampler_draws_p_identities_of_k_images():
    labels = torch.arange(5).repeat_interleave(6)
    sampler = train_module.PKSampler(labels, p=3, k=4, generator=torch.Generator().manual_seed(0))
    batch = sampler()
    assert len(batch) == 12 and len(set(batch.tolist())) == 12
    counts = torch.bincount(labels[batch], minlength=5)
    assert sorted(counts.tolist()) == [0, 0, 4, 4, 4]
    with pytest.raises(ValueError):
        train_module.PKSampler(labels, p=6, k=2, generator=torch.Generator())


def test_the_identities_are_held_out():
    data = train_module.load_data(train_module.Settings())
    assert set(data["train"][1].tolist()) == set(data["seen"][1].tolist()) == set(range(7))
    assert set(data["unseen"][1].tolist()) == {7, 8, 9}
    for images, _ in data.values():
        assert images.dtype == torch.float32 and images.shape[1] == 64
        assert images.min() >= 0 and images.max() <= 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("facenet") / "train.json"
    settings = train_module.Settings(steps=40, batch_identities=4, images_per_identity=4, threads=1,
                                     seed=0, out=str(out), quiet=True)
    return train_module.train(settings), out


def test_training_runs_and_the_loss_goes_down(run):
    summary, _ = run
    assert summary.steps_taken + summary.skipped_batches == 40
    assert summary.steps_taken >= 30
    losses = summary.losses
    assert all(0.0 < loss < train_module.MARGIN for loss in losses)    # each semi-hard triplet in (0, margin)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_the_reported_numbers_are_rates(run):
    summary, _ = run
    for metrics in (summary.pixels, summary.before, summary.after):
        for name in ("unseen", "seen"):
            m = metrics[name]
            for far in train_module.FARS:
                assert 0.0 <= m[f"val@far={far:g}"] <= 1.0
                assert 0.0 <= m[f"far_achieved@far={far:g}"] <= far
            assert m[f"val@far={1e-3:g}"] <= m[f"val@far={1e-2:g}"]
            assert 0.0 <= m["nn_accuracy"] <= 1.0
    n = summary.sizes["unseen"]["images"]
    assert summary.after["unseen"]["pairs_same"] + summary.after["unseen"]["pairs_diff"] == n * (n - 1) // 2


def test_training_helps_on_the_training_identities(run):
    summary, _ = run
    assert summary.after["seen"]["val@far=0.01"] > summary.before["seen"]["val@far=0.01"]


def test_the_json_holds_the_settings_and_the_numbers(run):
    summary, out = run
    written = json.loads(out.read_text())
    assert written["settings"]["steps"] == 40 and written["settings"]["batch_identities"] == 4
    assert written["after"]["unseen"]["val@far=0.001"] == summary.after["unseen"]["val@far=0.001"]
    assert written["skipped_batches"] == summary.skipped_batches
    assert "losses" not in written and written["loss_curve"]
    assert math.isfinite(written["wall_time_s"])


def test_the_command_line_sets_the_settings():
    settings = train_module.parse_args(["--steps", "7", "--seed", "3", "--batch-identities", "5",
                                        "--images-per-identity", "6", "--out", "x.json", "--quiet"])
    assert (settings.steps, settings.seed, settings.batch_identities, settings.images_per_identity,
            settings.out, settings.quiet) == (7, 3, 5, 6, "x.json", True)
    assert train_module.parse_args([]) == train_module.Settings()
