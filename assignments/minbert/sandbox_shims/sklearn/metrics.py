"""numpy versions of the sklearn.metrics functions the minbert classifier imports.

Part of dlgrade's scikit-learn stand-in (see the package docstring): only placed on the grading
sandbox's import path. Signatures follow scikit-learn for the common arguments (y_true, y_pred,
labels, pos_label, average, sample_weight, zero_division); the values agree with scikit-learn's
for single-label classification. Undefined ratios (no predictions of a class, no examples of a
class) take the value of `zero_division`, 0.0 by default, without a warning.
"""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy_score", "precision_score", "recall_score", "f1_score",
           "precision_recall_fscore_support", "confusion_matrix", "classification_report"]

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


def _as_labels(y) -> np.ndarray:
    """1-D array of labels from a list, array or tensor (or a list of 0-d tensors)."""
    if hasattr(y, "detach"):                      # a torch tensor, without importing torch
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.dtype == object:
        arr = np.asarray([np.asarray(v).item() if hasattr(v, "__array__") else v for v in arr.ravel()])
    if arr.ndim == 2 and arr.shape[1] == 1:      # a column vector, as scikit-learn accepts
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of labels, got shape {arr.shape}")
    return arr


def _check_pair(y_true, y_pred, sample_weight=None):
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"Found input variables with inconsistent numbers of samples: "
                         f"[{len(y_true)}, {len(y_pred)}]")
    weight = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if weight.shape != (len(y_true),):
        raise ValueError("sample_weight must have one entry per sample")
    return y_true, y_pred, weight


def _zero_division_value(zero_division) -> float:
    if zero_division == "warn":
        return 0.0
    return float(zero_division)


def _ratio(numerator, denominator, zero_division) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(numerator.shape, _zero_division_value(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def accuracy_score(y_true, y_pred, *, normalize=True, sample_weight=None):
    """Fraction (or, with normalize=False, weighted count) of exactly right predictions."""
    y_true, y_pred, weight = _check_pair(y_true, y_pred, sample_weight)
    correct = float(np.sum(weight * (y_true == y_pred)))
    if not normalize:
        return correct
    return correct / float(np.sum(weight)) if len(y_true) else 0.0


def confusion_matrix(y_true, y_pred, *, labels=None, sample_weight=None, normalize=None):
    """C[i, j] = (weighted) count of samples of true label labels[i] predicted as labels[j]."""
    y_true, y_pred, weight = _check_pair(y_true, y_pred, sample_weight)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)))
    for t, p, w in zip(y_true.tolist(), y_pred.tolist(), weight):
        if t in index and p in index:
            matrix[index[t], index[p]] += w
    if normalize == "true":
        matrix = _ratio(matrix, matrix.sum(axis=1, keepdims=True), 0.0)
    elif normalize == "pred":
        matrix = _ratio(matrix, matrix.sum(axis=0, keepdims=True), 0.0)
    elif normalize == "all":
        matrix = _ratio(matrix, np.full_like(matrix, matrix.sum()), 0.0)
    elif normalize is not None:
        raise ValueError("normalize must be one of {'true', 'pred', 'all', None}")
    if sample_weight is None and normalize is None:
        matrix = matrix.astype(np.int64)
    return matrix


def precision_recall_fscore_support(y_true, y_pred, *, beta=1.0, labels=None, pos_label=1,
                                    average=None, sample_weight=None, zero_division="warn"):
    """Per-label (average=None) or averaged precision, recall, F-beta and support.

    average='binary' reports only pos_label and requires at most two labels; 'micro' counts
    true/false positives over all labels; 'macro' is the unweighted mean over labels;
    'weighted' the mean weighted by each label's support. Averages return support None.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average has to be one of {_AVERAGES}")
    y_true, y_pred, weight = _check_pair(y_true, y_pred, sample_weight)
    present = np.unique(np.concatenate([y_true, y_pred]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError("Target is multiclass but average='binary'. Please choose another "
                             "average setting, one of [None, 'micro', 'macro', 'weighted'].")
        if len(present) == 2 and pos_label not in present.tolist():
            raise ValueError(f"pos_label={pos_label} is not a valid label. It should be one of {present.tolist()}")
        labels = np.asarray([pos_label])
    elif labels is None:
        labels = present
    else:
        labels = np.asarray(labels)

    true_positive = np.array([np.sum(weight * ((y_true == l) & (y_pred == l))) for l in labels.tolist()])
    predicted = np.array([np.sum(weight * (y_pred == l)) for l in labels.tolist()])
    support = np.array([np.sum(weight * (y_true == l)) for l in labels.tolist()])

    if average == "micro":
        # pool the counts of all labels first, then take the ratios
        true_positive, predicted, support_sum = true_positive.sum(keepdims=True), \
            predicted.sum(keepdims=True), support.sum(keepdims=True)
    else:
        support_sum = support

    precision = _ratio(true_positive, predicted, zero_division)
    recall = _ratio(true_positive, support_sum, zero_division)
    beta2 = beta * beta
    # F = (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp), i.e. the weighted harmonic mean of P and R
    f_score = _ratio((1 + beta2) * true_positive, beta2 * support_sum + predicted, zero_division)

    if average is None:
        return precision, recall, f_score, support.astype(np.int64) if sample_weight is None else support
    if average == "weighted":
        total = support.sum()
        if total == 0:
            value = _zero_division_value(zero_division)
            return value, value, value, None
        return (float(np.average(precision, weights=support)), float(np.average(recall, weights=support)),
                float(np.average(f_score, weights=support)), None)
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f_score)), None


def precision_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                    sample_weight=None, zero_division="warn"):
    """tp / (tp + fp)."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                           average=average, sample_weight=sample_weight,
                                           zero_division=zero_division)[0]


def recall_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
    """tp / (tp + fn)."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                           average=average, sample_weight=sample_weight,
                                           zero_division=zero_division)[1]


def f1_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary",
             sample_weight=None, zero_division="warn"):
    """2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall."""
    return precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label,
                                           average=average, sample_weight=sample_weight,
                                           zero_division=zero_division)[2]


def classification_report(y_true, y_pred, *, labels=None, target_names=None, sample_weight=None,
                          digits=2, output_dict=False, zero_division="warn"):
    """Per-label precision, recall, f1-score and support, then accuracy and the averages.

    A text table laid out as scikit-learn's, or with output_dict=True a dict of dicts.
    """
    y_true_arr, y_pred_arr, _ = _check_pair(y_true, y_pred, sample_weight)
    present = np.unique(np.concatenate([y_true_arr, y_pred_arr]))
    labels_given = labels is not None
    labels = present if labels is None else np.asarray(labels)
    if target_names is None:
        target_names = [str(label) for label in labels.tolist()]
    elif len(target_names) != len(labels):
        raise ValueError(f"Number of classes, {len(labels)}, does not match size of "
                         f"target_names, {len(target_names)}")
    common = dict(labels=labels, sample_weight=sample_weight, zero_division=zero_division)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, **common)

    # micro average equals accuracy when every label is reported: then the row is "accuracy"
    micro_is_accuracy = not labels_given or set(present.tolist()) <= set(labels.tolist())
    rows = {name: (p[i], r[i], f[i], s[i]) for i, name in enumerate(target_names)}
    averages = {}
    total = s.sum()
    for kind in ("micro", "macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, average=kind, **common)
        key = "accuracy" if kind == "micro" and micro_is_accuracy else f"{kind} avg"
        averages[key] = (ap, ar, af, total)

    if output_dict:
        report = {name: dict(zip(("precision", "recall", "f1-score", "support"), map(float, v)))
                  for name, v in rows.items()}
        for key, (ap, ar, af, sup) in averages.items():
            if key == "accuracy":
                report[key] = float(af)
            else:
                report[key] = {"precision": float(ap), "recall": float(ar), "f1-score": float(af),
                               "support": float(sup)}
        return report

    width = max(max(len(name) for name in target_names), len("weighted avg"), digits)
    headers = ("precision", "recall", "f1-score", "support")
    lines = [f"{'':>{width}} " + "".join(f" {h:>9}" for h in headers), ""]

    def number(value):
        return f" {value:>9.{digits}f}"

    def count(value):
        return f" {int(value) if float(value).is_integer() else value:>9}"

    for name, (rp, rr, rf, rs) in rows.items():
        lines.append(f"{name:>{width}} " + number(rp) + number(rr) + number(rf) + count(rs))
    lines.append("")
    for key, (ap, ar, af, sup) in averages.items():
        if key == "accuracy":
            lines.append(f"{key:>{width}} " + f" {'':>9}" * 2 + number(af) + count(sup))
        else:
            lines.append(f"{key:>{width}} " + number(ap) + number(ar) + number(af) + count(sup))
    return "\n".join(lines) + "\n"
