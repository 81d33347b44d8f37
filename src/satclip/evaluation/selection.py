"""What the probes chose on validation, per encoder: a table for the evaluate report.

Each fit records its chosen hyper-parameters (``Probe.selected``: the MLP's preprocessing, width,
learning rate, weight decay and best epoch; XGBoost's depth and learning rate; the ridge alpha).
:func:`selection_summary` condenses them over seeds (and pretraining runs): a setting's most
frequent value with how many fits chose it, a number's median.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

SKIPPED_KEYS = ("val_loss",)  # a score, not a choice


def _describe(values: list) -> str:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) == len(values) and len({*numbers}) > 1:
        return f"median {pd.Series(numbers).median():g} ({min(numbers):g}-{max(numbers):g})"
    value, count = Counter(map(str, values)).most_common(1)[0]
    return value if count == len(values) else f"{value} ({count}/{len(values)})"


def selection_summary(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per (probe, split, encoder): each chosen hyper-parameter over that cell's fits.

    ``fits`` has the columns ``encoder, probe, split, selected`` (``selected`` a JSON object per
    fit, as ``satclip.evaluation.run`` writes them).
    """
    rows = []
    for (probe, split, encoder), group in fits.groupby(["probe", "split", "encoder"], sort=False):
        chosen = [json.loads(s) if isinstance(s, str) and s else {} for s in group["selected"]]
        keys = sorted({k for c in chosen for k in c if k not in SKIPPED_KEYS})
        row = {"probe": probe, "split": split, "encoder": encoder, "fits": len(chosen)}
        row.update({k: _describe([c[k] for c in chosen if k in c]) for k in keys})
        rows.append(row)
    return pd.DataFrame(rows).fillna("")
