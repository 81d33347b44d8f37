"""The parameters a stage reads, as a compact table for the top of its report.

The keys are the stage's ``params`` in ``dvc.yaml`` (a section, a sub-section or one key), each
flattened to dotted names with its value from the validated ``Params``: what the stage ran with,
instead of papermill's copy of the whole of params.yaml.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml

from satclip.config import Params, params_hash


def stage_param_keys(stage: str, dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The ``params`` entries of ``stage`` in ``dvc_yaml`` (``params.yaml:`` as a whole: ``["*"]``)."""
    spec = yaml.safe_load(Path(dvc_yaml).read_text())["stages"][stage]
    spec = spec.get("do", spec)
    keys = []
    for entry in spec.get("params", []):
        keys += ["*"] if isinstance(entry, dict) else [str(entry)]
    return keys


def _flatten(value, prefix: str) -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def params_table(params: Params, stage: str, dvc_yaml: str | Path = "dvc.yaml") -> pd.DataFrame:
    """One row per parameter the stage reads: ``value`` indexed by the dotted ``parameter`` name.

    A stage that reads all of params.yaml (the figures) gets one row per section instead, with the
    params hash that names the run.
    """
    keys = stage_param_keys(stage, dvc_yaml) if Path(dvc_yaml).is_file() else ["*"]
    flat = _flatten(asdict(params), "")
    if "*" in keys or len(keys) > 6 and set(keys) >= {"download", "pretrain", "evaluate"}:
        rows = {"params hash": params_hash(params)}
        rows.update({k: "see params.yaml" for k in asdict(params)})
    else:
        rows = {name: v for name, v in flat.items() if any(name == k or name.startswith(f"{k}.") for k in keys)}
    text = {k: (", ".join(map(str, v)) if isinstance(v, list) else "null" if v is None else str(v))
            for k, v in rows.items()}
    return pd.DataFrame({"value": text}).rename_axis("parameter")
