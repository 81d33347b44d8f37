"""The headline metrics: the one metrics file ``dvc exp show`` lists (``metrics/headline.json``).

A handful of flat numbers, so that an experiment's row fits a terminal: pretraining retrieval,
how many tasks the pretrained encoder wins, and the score of the headline tasks. The full
metrics stay in ``metrics/<stage>.json`` (``dvc metrics show results/metrics/downstream.json``).

Keys (every one a number, NaN-free: a missing value is left out):

- ``top1``, ``median_km``: pretraining validation top-1 retrieval and median error (km), mean
  over the pretraining runs;
- ``<probe>_<split>`` (``mlp_cb``, ``mlp_asia``, ...): the number of tasks on which ``satclip``
  beats every baseline beyond the paired 95 % interval (``evaluation.verdict``), for
  ``WIN_PROTOCOLS``; short names, so that a row and a swept param fit 200 columns;
- ``mlp_cb_val``: the same count on the probes' validation loss (the validation verdict, no
  test point: what a sweep's default is chosen by), MLP probe, checkerboard split;
- one key per headline task (the first ``HEADLINE_TASKS`` of ``download.labels.tasks``): its primary
  metric for ``satclip`` with the MLP probe on the checkerboard split, mean over seeds.
"""

from __future__ import annotations

import math

import pandas as pd

from satclip.evaluation.metrics import primary_metric
from satclip.evaluation.verdict import ENCODER, beats_all, results_kind

# (probe, split, key): the paper's protocol (MLP, held-out continents), then ours
WIN_PROTOCOLS = (("mlp", "checkerboard", "mlp_cb"), ("mlp", "continent:Asia", "mlp_asia"),
                 ("mlp", "continent:Africa", "mlp_africa"), ("xgboost", "checkerboard", "xgb_cb"),
                 ("linear", "checkerboard", "lin_cb"), ("linear_val", "checkerboard", "linval_cb"))
VALIDATION_PROTOCOL = ("mlp", "checkerboard", "mlp_cb_val")
HEADLINE_TASKS = 2
SCORE_PROTOCOL = ("mlp", "checkerboard")
PRETRAIN_KEYS = {"val_top1": "top1", "val_median_km": "median_km"}


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else round(value, 4)


def headline_metrics(results: pd.DataFrame, verdict: pd.DataFrame, tasks: list[str],
                     pretrain: dict | None = None, validation: dict | None = None) -> dict[str, float]:
    """The headline metrics (module docstring).

    From the downstream table, the verdict, the task list, pretrain.json and the validation
    verdict's counts (``downstream.json["validation_verdict"]``).
    """
    out: dict[str, float] = {}
    for key, name in PRETRAIN_KEYS.items():
        value = _number((pretrain or {}).get(key))
        if value is not None:
            out[name] = value
    splits = set(verdict["split"]) if len(verdict) else set()
    for probe, split, key in WIN_PROTOCOLS:
        if split in splits and (verdict["probe"] == probe).any():
            out[key] = len(beats_all(verdict, probe, split))
    probe, split, key = VALIDATION_PROTOCOL
    cell = ((validation or {}).get(probe) or {}).get(split) or {}
    if "beats_all" in cell:
        out[key] = int(cell["beats_all"])
    probe, split = SCORE_PROTOCOL
    for task in list(tasks)[:HEADLINE_TASKS]:
        rows = results[(results["task"] == task) & (results["encoder"] == ENCODER)
                       & (results["probe"] == probe) & (results["split"] == split)]
        if rows.empty:
            continue
        metric = primary_metric(results_kind(task, rows), split)
        value = _number(rows.loc[rows["metric"] == metric, "mean"].iloc[0]) if (rows["metric"] == metric).any() else None
        if value is not None:
            out[task] = value
    return out
