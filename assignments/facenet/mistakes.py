"""Known mistakes in FaceNet's triplet loss and semi-hard mining, as patches of the reference
(`reference/facenet/triplet.py`, the student's `triplet.py`), and right answers written
differently, which must keep full marks."""
from grader.mutants import Mutant

FILE = "triplet.py"

WINDOW = "    semi_hard = (~same)[:, None, :] & (an > ap) & (an < ap + margin)  # [B, B, B]  (a, p, n)\n"

MUTANTS = [
    Mutant("non_strict_lower", "a negative exactly as far from the anchor as the positive counts as semi-hard: "
           "it must be strictly farther (|a-p|^2 < |a-n|^2)", FILE,
           WINDOW, WINDOW.replace("(an > ap)", "(an >= ap)")),
    Mutant("non_strict_upper", "a negative exactly at |a-p|^2 + margin counts as semi-hard: it must be strictly "
           "inside the margin (|a-n|^2 < |a-p|^2 + margin)", FILE,
           WINDOW, WINDOW.replace("(an < ap + margin)", "(an <= ap + margin)")),
    Mutant("hardest_negative", "the closest negative is mined whatever its distance (hard mining): a semi-hard "
           "negative is farther than the positive and inside the margin", FILE,
           WINDOW, "    semi_hard = (~same)[:, None, :].expand(-1, len(labels), -1)\n"),
    Mutant("distances_not_squared", "pairwise_distances returns |x_i - x_j| where squared=True asks for "
           "|x_i - x_j|^2 (FaceNet uses squared L2 distances)", FILE,
           "    if squared:\n        return squared_distances\n",
           "    if squared:\n        return squared_distances.sqrt()\n"),
    Mutant("margin_sign", "the margin is subtracted: the hinge is [|a-p|^2 - |a-n|^2 + margin]_+", FILE,
           "positive_distance - negative_distance + margin", "positive_distance - negative_distance - margin"),
    Mutant("mean_over_all_pairs", "the loss is averaged over every anchor-positive pair instead of over the mined "
           "triplets", FILE,
           "    return triplet_loss(anchor, positive, negative, margin)\n",
           "    pairs = _same_identity(labels).sum() - len(labels)\n"
           "    return triplet_loss(anchor, positive, negative, margin) * len(triplets) / pairs\n"),
    Mutant("anchor_is_own_positive", "an image is used as its own positive: anchor-positive pairs are two "
           "different images of one identity", FILE,
           "    pairs = same & ~eye                                              # [B, B] anchor-positive\n",
           "    pairs = same                                                     # [B, B] anchor-positive\n"),
    Mutant("labels_compared_wrongly", "positives and negatives are swapped: a positive has the anchor's label "
           "(labels[:, None] == labels[None, :]), a negative another one", FILE,
           "    return labels[:, None] == labels[None, :]\n", "    return labels[:, None] != labels[None, :]\n"),
    Mutant("negatives_from_same_identity", "negatives are taken from every other image, the anchor's own identity "
           "included: a negative must have another label", FILE,
           WINDOW, WINDOW.replace("(~same)[:, None, :]", "(~eye)[:, None, :]")),
    Mutant("sum_instead_of_mean", "triplet_loss sums the hinge over the triplets; it is their mean", FILE,
           "    return torch.relu(positive_distance - negative_distance + margin).mean()\n",
           "    return torch.relu(positive_distance - negative_distance + margin).sum()\n"),
    Mutant("normalises_inside", "pairwise_distances normalises the embeddings itself: use them as given (the "
           "network's last layer puts them on the unit sphere)", FILE,
           "    differences = embeddings[:, None, :] - embeddings[None, :, :]   # [B, B, D]\n",
           "    embeddings = torch.nn.functional.normalize(embeddings, dim=-1)\n"
           "    differences = embeddings[:, None, :] - embeddings[None, :, :]   # [B, B, D]\n"),
    Mutant("sqrt_gradient_nan", "the square root is taken at zero distances too: its gradient there is infinite "
           "(NaN through the diagonal); take it only where the squared distance is positive", FILE,
           "    return torch.where(positive, safe.sqrt(), torch.zeros_like(squared_distances))\n",
           "    return squared_distances.sqrt()\n"),
    Mutant("batch_hard_easiest_positive", "batch-hard takes the closest positive; it takes the farthest one "
           "(max over positives) and the closest negative", FILE,
           "torch.zeros_like(distances)).amax(dim=1)", "torch.zeros_like(distances)).amin(dim=1)"),
    Mutant("batch_hard_mean_over_all_anchors", "batch-hard averages over every anchor, those without a positive "
           "or a negative included: average over the anchors that have both", FILE,
           "    return losses[valid].mean()\n", "    return losses.mean()\n"),
    # numerically right: only the complexity case can catch it
    Mutant("loop_over_anchors", "the negatives are mined in a Python loop over the anchors: compute on the whole "
           "batch at once", FILE,
           "    closest, negative = candidates.min(dim=-1)                      # [B, B]: the hardest semi-hard negative\n",
           "    per_anchor = [candidates[a].min(dim=-1) for a in range(len(labels))]\n"
           "    closest = torch.stack([found.values for found in per_anchor])\n"
           "    negative = torch.stack([found.indices for found in per_anchor])\n"),
    Mutant("no_triplet_is_nan", "with no triplet the loss is the mean of nothing, NaN: return 0 (with a zero "
           "gradient) when nothing is mined", FILE,
           "    if len(triplets) == 0:\n        return _no_loss(embeddings)\n", ""),
]

VARIANTS = [
    Mutant("cdist_squared", "", FILE,
           "    differences = embeddings[:, None, :] - embeddings[None, :, :]   # [B, B, D]\n"
           "    squared_distances = differences.pow(2).sum(dim=-1)              # [B, B]\n",
           "    squared_distances = torch.cdist(embeddings, embeddings).pow(2)\n"),
    Mutant("expanded_with_clamp", "", FILE,
           "    differences = embeddings[:, None, :] - embeddings[None, :, :]   # [B, B, D]\n"
           "    squared_distances = differences.pow(2).sum(dim=-1)              # [B, B]\n",
           "    gram = embeddings @ embeddings.T\n"
           "    norms = gram.diagonal()\n"
           "    squared_distances = (norms[:, None] - 2 * gram + norms[None, :]).clamp(min=0)\n"),
    Mutant("masks_with_eq", "", FILE,
           "    return labels[:, None] == labels[None, :]\n", "    return labels.unsqueeze(1).eq(labels.unsqueeze(0))\n"),
    Mutant("masks_with_one_hot", "", FILE,
           "    return labels[:, None] == labels[None, :]\n",
           "    one_hot = torch.nn.functional.one_hot(labels).to(torch.float64)\n"
           "    return (one_hot @ one_hot.T) > 0\n"),
]
