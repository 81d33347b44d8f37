"""Downstream metrics.

Regression (the paper's): R^2, MSE on targets standardized with the training split's mean and
standard deviation, and MAE in the target's original units. Classification: top-1 accuracy,
macro-F1 (unweighted mean over every class in the true or predicted labels, as scikit-learn's
``f1_score(average="macro")``; a class seen only in test scores F1 = 0) and ``accuracy_seen``, the
accuracy over the test points whose class occurs in training (on a held-out continent most
countries and ecoregions never do, so ``accuracy`` is near 0 by construction there).
"""

from __future__ import annotations

import numpy as np

REGRESSION_METRICS = ("r2", "mse", "mae")
CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "accuracy_seen")
# The loss a probe selected its hyper-parameters by, on its validation points (never the test
# split): MSE of standardized targets or cross-entropy (mlp), RMSE or log-loss (xgboost), squared
# error or error rate (linear_val). Kept per fit in the scores tables for the validation verdict.
VAL_LOSS = "val_loss"
# Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = frozenset({"mse", "mae", VAL_LOSS})
# The metric a results table shows per task kind.
PRIMARY_METRIC = {"regression": "r2", "classification": "accuracy"}


def primary_metric(kind: str, split: str) -> str:
    """The metric a table shows for a task ``kind`` on ``split``.

    ``PRIMARY_METRIC``, except classification on a held-out continent (``continent:<name>``):
    accuracy over the test points whose class occurs in training (``accuracy_seen``).
    """
    if kind == "classification" and split.startswith("continent"):
        return "accuracy_seen"
    return PRIMARY_METRIC[kind]


def metric_names(kind: str) -> tuple[str, ...]:
    """The metrics reported for a task ``kind`` ("regression" or "classification")."""
    if kind == "regression":
        return REGRESSION_METRICS
    if kind == "classification":
        return CLASSIFICATION_METRICS
    raise ValueError(f"unknown task kind {kind!r}")


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"need two 1-d arrays of equal length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no test points to score")
    return y_true, y_pred


def r2(y_true, y_pred) -> float:
    """Coefficient of determination 1 - SSE / SST (SST around the test mean; 0 if SST is 0)."""
    y, p = _pair(y_true, y_pred)
    y, p = y.astype(np.float64), p.astype(np.float64)
    sse = float(np.sum((y - p) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0.0:
        return 1.0 if sse == 0.0 else 0.0  # scikit-learn's convention for a constant target
    return 1.0 - sse / sst


def mse(y_true, y_pred) -> float:
    """Mean squared error."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean((y.astype(np.float64) - p.astype(np.float64)) ** 2))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y.astype(np.float64) - p.astype(np.float64))))


def accuracy(y_true, y_pred) -> float:
    """Top-1 accuracy (share of exact label matches)."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(y == p))


def macro_f1(y_true, y_pred) -> float:
    """Macro-averaged F1 over the union of true and predicted labels."""
    y, p = _pair(y_true, y_pred)
    labels, y_code = np.unique(np.concatenate([y, p]), return_inverse=True)
    t, q = y_code[: len(y)], y_code[len(y):]
    k = len(labels)
    tp = np.bincount(t[t == q], minlength=k).astype(np.float64)
    support = np.bincount(t, minlength=k).astype(np.float64)     # tp + fn
    predicted = np.bincount(q, minlength=k).astype(np.float64)   # tp + fp
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1.mean())


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray, mean: float, scale: float) -> dict[str, float]:
    """R^2, MSE (standardized by the training ``mean`` and ``scale``) and MAE (original units).

    ``y_true`` and ``y_pred`` are in original units (shape (n,)).
    """
    y, p = _pair(y_true, y_pred)
    return {"r2": r2(y, p), "mse": mse((y - mean) / scale, (p - mean) / scale), "mae": mae(y, p)}


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, seen: np.ndarray | None = None) -> dict[str, float]:
    """Top-1 accuracy, macro-F1 and ``accuracy_seen`` (labels of any comparable dtype, shape (n,)).

    ``seen``: (n,) bool, the test points whose class occurs in training (default: all);
    ``accuracy_seen`` is NaN when there is none.
    """
    y, p = _pair(y_true, y_pred)
    seen = np.ones(len(y), dtype=bool) if seen is None else np.asarray(seen, dtype=bool)
    return {"accuracy": accuracy(y, p), "macro_f1": macro_f1(y, p),
            "accuracy_seen": accuracy(y[seen], p[seen]) if seen.any() else float("nan")}
