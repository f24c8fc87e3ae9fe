"""The scikit-learn stand-in of the minbert sandbox (assignments/minbert/sandbox_shims/sklearn).

Loaded by path under private names: the shim must never be importable as `sklearn` in the
test process. Expected values are worked out by hand in the comments.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
SHIM = ROOT / "assignments" / "minbert" / "sandbox_shims" / "sklearn"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def metrics():
    return _load("_dlgrade_shim_sklearn_metrics", SHIM / "metrics.py")


def test_package_docstring_explains_itself():
    package = _load("_dlgrade_shim_sklearn", SHIM / "__init__.py")
    doc = package.__doc__.lower()
    assert "sandbox" in doc and "import path" in doc and "not scikit-learn" in doc
    assert sys.modules.get("sklearn") is not package


def test_classifier_import_line_works(metrics):
    # what every student's classifier.py imports at module level
    for name in ("classification_report", "f1_score", "recall_score", "accuracy_score", "precision_score"):
        assert callable(getattr(metrics, name))


# Multiclass example: y_true = [0,0,0,1,1,2], y_pred = [0,1,1,1,2,2]
#   label 0: support 3, predicted 1, tp 1 -> P 1,   R 1/3, F 2/(2+0+2) = 1/2
#   label 1: support 2, predicted 3, tp 1 -> P 1/3, R 1/2, F 2/(2+2+1) = 2/5
#   label 2: support 1, predicted 2, tp 1 -> P 1/2, R 1,   F 2/(2+1+0) = 2/3
#   accuracy 3/6
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 2, 2]


def test_accuracy(metrics):
    assert metrics.accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(0.5)
    assert metrics.accuracy_score(Y_TRUE, Y_PRED, normalize=False) == 3
    assert metrics.accuracy_score([1, 2], [1, 2]) == 1.0
    # weights 1,1,1,1,1,3: correct are samples 0, 3, 5 -> (1+1+3)/8
    assert metrics.accuracy_score(Y_TRUE, Y_PRED, sample_weight=[1, 1, 1, 1, 1, 3]) == pytest.approx(5 / 8)


def test_per_label(metrics):
    p, r, f, s = metrics.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(p, [1, 1 / 3, 1 / 2])
    np.testing.assert_allclose(r, [1 / 3, 1 / 2, 1])
    np.testing.assert_allclose(f, [1 / 2, 2 / 5, 2 / 3])
    assert s.tolist() == [3, 2, 1]
    np.testing.assert_allclose(metrics.f1_score(Y_TRUE, Y_PRED, average=None), [1 / 2, 2 / 5, 2 / 3])


@pytest.mark.parametrize("average, precision, recall, f1", [
    ("macro", 11 / 18, 11 / 18, (1 / 2 + 2 / 5 + 2 / 3) / 3),             # 0.6111, 0.6111, 0.5222
    ("weighted", (3 * 1 + 2 / 3 + 1 / 2) / 6, 3 / 6, (3 / 2 + 4 / 5 + 2 / 3) / 6),   # 0.6944, 0.5, 0.4944
    ("micro", 0.5, 0.5, 0.5),                                             # pooled: 3 tp of 6
])
def test_averages(metrics, average, precision, recall, f1):
    assert metrics.precision_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(precision)
    assert metrics.recall_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(recall)
    assert metrics.f1_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(f1)


def test_binary(metrics):
    # positive label 1: tp 2, predicted 2, support 3 -> P 1, R 2/3, F 4/5
    y_true, y_pred = [0, 1, 1, 0, 1], [0, 1, 0, 0, 1]
    assert metrics.precision_score(y_true, y_pred) == pytest.approx(1.0)
    assert metrics.recall_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(0.8)
    # pos_label 0: tp 2, predicted 3, support 2 -> P 2/3, R 1, F 4/5
    assert metrics.precision_score(y_true, y_pred, pos_label=0) == pytest.approx(2 / 3)
    assert metrics.recall_score(y_true, y_pred, pos_label=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="multiclass"):
        metrics.f1_score(Y_TRUE, Y_PRED)
    with pytest.raises(ValueError, match="pos_label"):
        metrics.f1_score([2, 3], [3, 2])


def test_zero_division(metrics):
    # label 1 is never predicted: its precision is undefined -> zero_division
    y_true, y_pred = [0, 1, 0], [0, 0, 0]
    assert metrics.precision_score(y_true, y_pred) == 0.0
    assert metrics.precision_score(y_true, y_pred, zero_division=1) == 1.0
    assert metrics.f1_score(y_true, y_pred) == 0.0
    # macro: label 0 has P 2/3, R 1, F 4/5; label 1 has P 0 (undefined), R 0, F 0
    assert metrics.f1_score(y_true, y_pred, average="macro") == pytest.approx(0.4)


def test_inputs_like_the_classifier_builds_them(metrics):
    # model_eval extends lists with 0-d label tensors and numpy argmax ints
    y_true = list(torch.tensor([0, 1, 2, 1]))
    y_pred = list(np.array([0, 1, 1, 1]))
    assert metrics.accuracy_score(y_true, y_pred) == pytest.approx(0.75)
    assert metrics.f1_score(torch.tensor([0, 1, 1]), np.array([0, 1, 0]), average="macro") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="inconsistent"):
        metrics.accuracy_score([0, 1], [0])


def test_confusion_matrix(metrics):
    assert metrics.confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[1, 2, 0], [0, 1, 1], [0, 0, 1]]


def test_classification_report_layout(metrics):
    # scikit-learn's documented example
    report = metrics.classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1],
                                           target_names=["class 0", "class 1", "class 2"])
    assert report == (
        "              precision    recall  f1-score   support\n"
        "\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n"
        "\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n"
    )


def test_classification_report_with_labels_subset(metrics):
    # labels do not cover every label seen, so the pooled row is "micro avg", not accuracy
    report = metrics.classification_report([1, 1, 1], [1, 1, 0], labels=[1, 2, 3])
    assert report == (
        "              precision    recall  f1-score   support\n"
        "\n"
        "           1       1.00      0.67      0.80         3\n"
        "           2       0.00      0.00      0.00         0\n"
        "           3       0.00      0.00      0.00         0\n"
        "\n"
        "   micro avg       1.00      0.67      0.80         3\n"
        "   macro avg       0.33      0.22      0.27         3\n"
        "weighted avg       1.00      0.67      0.80         3\n"
    )


def test_classification_report_dict(metrics):
    report = metrics.classification_report(Y_TRUE, Y_PRED, output_dict=True, digits=4)
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["1"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1-score": 0.4, "support": 2})
    assert report["macro avg"]["f1-score"] == pytest.approx((1 / 2 + 2 / 5 + 2 / 3) / 3)
    assert report["weighted avg"]["support"] == 6
