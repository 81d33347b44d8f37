"""The tidy results table: its canonical row order and the per-task files the evaluate stage writes.

Rows are ``RESULT_COLUMNS`` (and per-fit scores ``SCORE_COLUMNS``) of ``satclip.evaluation.run``.
Every output uses one deterministic order: tasks as in ``satclip.data.labels.TASKS`` (headline
tasks, population and biomes, first), then encoders (our default encoders in a fixed order, any
other alphabetically), probes, splits and metrics. The study-level tables and the verdict built
on them are ``satclip.evaluation.tables``; keeping them apart lets the evaluate stage run (and
fingerprint) only this, so a change to how results are tabulated re-runs no probe fit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from satclip.io import write_text

ENCODER_ORDER = ("satclip", "satclip-random", "sh", "wrap", "raw", "geoclip")
PROBE_ORDER = ("mlp", "xgboost", "linear", "linear_val")
SPLIT_ORDER = ("random", "checkerboard", "continent")
METRIC_ORDER = ("r2", "mse", "mae", "accuracy", "macro_f1", "accuracy_seen")


def _task_order() -> tuple[str, ...]:
    from satclip.data.labels import TASKS

    return tuple(TASKS)


def rank(order: tuple[str, ...], name: str) -> tuple[int, str]:
    """Sort key of ``name`` under ``order``: its position there, else after it, alphabetically."""
    return (order.index(name), "") if name in order else (len(order), name)


def split_rank(name: str) -> tuple[int, str]:
    """Sort key of a split: by kind (``SPLIT_ORDER``; ``continent:Asia`` is a continent split), then by name."""
    return (*rank(SPLIT_ORDER, name.split(":", 1)[0])[:1], name)


def _key(column: str, value: str) -> tuple:
    """Sort key of one value of ``column`` under the canonical order."""
    if column == "task":
        return rank(_task_order(), value)
    if column == "encoder":
        return rank(ENCODER_ORDER, value)
    if column == "probe":
        return rank(PROBE_ORDER, value)
    if column == "split":
        return split_rank(value)
    if column == "metric":
        return rank(METRIC_ORDER, value)
    return (0, value)


def ordered(column: str, values) -> list[str]:
    """Unique values of ``column`` in the canonical order."""
    return sorted(dict.fromkeys(str(v) for v in values), key=lambda v: _key(column, v))


def sort_results(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in the canonical order (task, encoder, probe, split, metric), index reset."""
    keys = ["task", "encoder", "probe", "split", "metric"]
    if df.empty:
        return df.reset_index(drop=True)
    ranks = []
    for k in reversed(keys):  # np.lexsort: the last key is the primary one
        values = df[k].astype(str)
        pos = {v: i for i, v in enumerate(ordered(k, values))}
        ranks.append(values.map(pos).to_numpy())
    return df.iloc[np.lexsort(ranks)].reset_index(drop=True)


def write_downstream_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the tidy results to ``path`` (atomically; canonical row order; 6 significant digits)."""
    text = sort_results(df).to_csv(index=False, float_format="%.6g", lineterminator="\n")
    return write_text(path, text)


def write_scores_csv(scores: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Per-fit scores (``run.SCORE_COLUMNS``) in a fixed order, 6 significant digits, atomically."""
    keys = ["task", "encoder", "probe", "split", "metric"]
    if len(scores):
        ranks = []
        for k in ["seed", *reversed(keys)]:
            values = scores[k].astype(str) if k != "seed" else scores[k]
            pos = {v: i for i, v in enumerate(sorted(set(values)) if k == "seed" else ordered(k, values))}
            ranks.append(values.map(pos).to_numpy())
        scores = scores.iloc[np.lexsort(ranks)]
    return write_text(path, scores.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
