"""The parameters a stage reads, as a compact table for the top of its report.

The keys are the stage's entry of ``satclip.paths.STAGE_PARAMS`` (a section, a sub-section or
one key; the params its fingerprint holds), each flattened to dotted names with its value from
the validated ``Params``: what the stage ran with, instead of papermill's copy of params.yaml.
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from satclip.config import Params, params_hash
from satclip.paths import STAGE_PARAMS, stage_params


def params_table(params: Params, stage: str) -> pd.DataFrame:
    """One row per parameter the stage reads: ``value`` indexed by the dotted ``parameter`` name.

    A stage that reads all of params.yaml (the figures) gets one row per section instead, with the
    params hash that names the run.
    """
    if set(STAGE_PARAMS[stage]) >= {"download", "pretrain", "evaluate"}:
        rows = {"params hash": params_hash(params)}
        rows.update({k: "see params.yaml" for k in asdict(params)})
    else:
        rows = stage_params(params, stage)
    text = {k: (", ".join(map(str, v)) if isinstance(v, list) else "null" if v is None else str(v))
            for k, v in rows.items()}
    return pd.DataFrame({"value": text}).rename_axis("parameter")
