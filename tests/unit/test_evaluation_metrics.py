import numpy as np
import pytest

from ci_helpers.builtin_evaluator_worker import classification_metrics, regression_metrics
from ci_helpers.evaluation import compare_with_committed


def test_regression_metrics_are_the_standard_ones():
    metrics = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert metrics["mae"] == pytest.approx(1 / 3)
    assert metrics["rmse"] == pytest.approx((1 / 3) ** 0.5)
    assert metrics["r2"] == pytest.approx(0.5)


def test_binary_classification_with_probabilities_has_roc_auc():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    metrics = classification_metrics([0, 1, 0, 1], [0, 1, 0, 1], probabilities)
    assert metrics == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0}


def test_multiclass_without_probabilities_has_no_roc_auc():
    metrics = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2])
    assert metrics["accuracy"] == 0.75
    assert "roc_auc" not in metrics


def test_mismatch_detection_tolerates_rounding_only():
    found = compare_with_committed({"a": 0.5, "b": 0.30000001}, {"a": 0.6, "b": 0.3, "c": 1.0})
    assert [m.metric for m in found] == ["a", "c"]
