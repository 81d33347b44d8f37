"""Does pretraining add something? The pretrained encoder against its baselines, per task."""

from __future__ import annotations

import numpy as np
import pandas as pd

from satclip.data.labels import TASKS
from satclip.evaluation.metrics import PRIMARY_METRIC


def pretraining_gain(results: pd.DataFrame, probe: str = "mlp", split: str = "checkerboard",
                     encoder: str = "satclip", baselines: tuple[str, ...] = ("raw", "satclip-random")) -> pd.DataFrame:
    """Per task: does ``encoder`` beat every baseline on the primary metric (one probe and split)?

    The research goal of the default run: on the checkerboard split with the MLP probe the
    pretrained embedding beats raw coordinates and the untrained encoder on at least 4 of 7 tasks.
    The comparison is of means over seeds; it carries no interval.
    """
    rows = []
    for task, sub in results[(results["probe"] == probe) & (results["split"] == split)].groupby("task", sort=False):
        metric = PRIMARY_METRIC[TASKS[task].kind] if task in TASKS else "r2"
        scores = sub[sub["metric"] == metric].set_index("encoder")["mean"]
        row = {"task": task, "metric": metric, encoder: scores.get(encoder, np.nan)}
        row.update({b: scores.get(b, np.nan) for b in baselines})
        row["beats_all"] = bool(all(row[encoder] > row[b] for b in baselines)) if not np.isnan(row[encoder]) else False
        rows.append(row)
    return pd.DataFrame(rows)
