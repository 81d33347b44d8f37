"""Metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from satclip.evaluation.metrics import (
    accuracy,
    classification_scores,
    macro_f1,
    mae,
    metric_names,
    mse,
    r2,
    regression_scores,
)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(3, 2, 200)
    p = y + rng.normal(0, 1, 200)
    assert r2(y, p) == pytest.approx(skm.r2_score(y, p), abs=1e-12)
    assert mse(y, p) == pytest.approx(skm.mean_squared_error(y, p), abs=1e-12)
    assert mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-12)
    assert r2(np.ones(5), np.ones(5)) == skm.r2_score(np.ones(5), np.ones(5)) == 1.0
    assert r2(np.ones(5), np.zeros(5)) == skm.r2_score(np.ones(5), np.zeros(5)) == 0.0


def test_regression_scores_standardize_mse_only():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    p = np.array([12.0, 18.0, 33.0, 40.0])
    s = regression_scores(y, p, mean=25.0, scale=10.0)
    assert s["mse"] == pytest.approx(skm.mean_squared_error(y, p) / 100.0)
    assert s["mae"] == pytest.approx(skm.mean_absolute_error(y, p))  # original units
    assert s["r2"] == pytest.approx(skm.r2_score(y, p))


def test_classification_metrics_match_sklearn_with_unseen_classes():
    y = np.array(["a", "a", "b", "c", "c", "d", "e"], dtype=object)  # "e" only in the truth
    p = np.array(["a", "b", "b", "c", "a", "f", "a"], dtype=object)  # "f" only predicted
    assert accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert macro_f1(y, p) == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    s = classification_scores(y, p)
    assert set(s) == set(metric_names("classification")) == {"accuracy", "macro_f1", "accuracy_seen"}
    assert s["accuracy_seen"] == s["accuracy"]  # every point counts without a mask
    seen = y != "e"
    assert classification_scores(y, p, seen)["accuracy_seen"] == pytest.approx(skm.accuracy_score(y[seen], p[seen]))
    assert np.isnan(classification_scores(y, p, np.zeros(len(y), bool))["accuracy_seen"])


def test_macro_f1_random_labels():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 12, 500), rng.integers(0, 10, 500)
    assert macro_f1(y, p) == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="no test points"):
        r2([], [])
    with pytest.raises(ValueError, match="equal length"):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError, match="unknown task kind"):
        metric_names("ranking")
