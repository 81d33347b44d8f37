"""The evaluate stage (one DVC ``foreach`` entry per task) and the tables stage that joins them.

Per task: ``<results>/tables/tasks/<task>.csv`` (tidy rows, see
``satclip.evaluation.run.RESULT_COLUMNS``), ``<results>/predictions/<task>.parquet`` (test
predictions of the first seed, for maps) and figures under ``<results>/figures/tasks/``.
The tables stage writes ``<results>/tables/downstream.csv``, the Markdown and LaTeX tables and
``<results>/metrics/downstream.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from satclip.config import Params
from satclip.data.labels import TASKS
from satclip.evaluation.run import TaskEvaluation, run_task
from satclip.evaluation.tables import (
    latex_tables,
    markdown_tables,
    sort_results,
    write_downstream_csv,
    write_metrics_json,
)
from satclip.io import atomic_path, write_text
from satclip.stages.download import data_paths
from satclip.stages.extract import load_embeddings


def result_paths(params: Params, task: str) -> dict[str, Path]:
    """Where one task's evaluation writes."""
    results = Path(params.paths.results)
    return {"table": results / "tables" / "tasks" / f"{task}.csv",
            "predictions": results / "predictions" / f"{task}.parquet",
            "figures": results / "figures" / "tasks"}


def run_evaluate(params: Params, task: str) -> TaskEvaluation:
    """Evaluate every extracted encoder on ``task``; write its tidy table and predictions."""
    if task not in params.download.labels.tasks:
        raise ValueError(f"task {task!r} is not in download.labels.tasks {params.download.labels.tasks}")
    table = pd.read_parquet(data_paths(params)["labels"] / f"{task}.parquet")
    embeddings: dict[str, np.ndarray | None] = {}
    unavailable: dict[str, str] = {}
    for encoder in params.extract.encoders:
        emb, reason = load_embeddings(params, encoder, task)
        if emb is None:
            unavailable[encoder] = reason
        else:
            embeddings[encoder] = emb
    evaluation = run_task(task, table, embeddings, params.evaluate, unavailable)
    paths = result_paths(params, task)
    write_downstream_csv(evaluation.results, paths["table"])
    predictions = evaluation.predictions.copy()
    if TASKS[task].kind == "classification":  # class labels as strings (Parquet needs one type)
        predictions[["target", "prediction"]] = predictions[["target", "prediction"]].astype(str)
    with atomic_path(paths["predictions"]) as tmp:
        predictions.to_parquet(tmp, index=False)
    return evaluation


def collect_results(params: Params) -> pd.DataFrame:
    """Join every task's tidy table (tasks in ``download.labels.tasks`` order)."""
    frames = []
    for task in params.download.labels.tasks:
        path = result_paths(params, task)["table"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no results for task {task!r}; run its evaluate stage")
        frames.append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    return sort_results(pd.concat(frames, ignore_index=True))


def write_tables(params: Params) -> pd.DataFrame:
    """``downstream.csv``, Markdown and LaTeX tables, ``downstream.json``; return the joined table."""
    results = collect_results(params)
    tables = Path(params.paths.results) / "tables"
    write_downstream_csv(results, tables / "downstream.csv")
    for name, text in (("downstream.md", markdown_tables(results)), ("downstream.tex", latex_tables(results))):
        write_text(tables / name, text)
    write_metrics_json(results, Path(params.paths.results) / "metrics" / "downstream.json")
    return results


def pretraining_gain(results: pd.DataFrame, probe: str = "mlp", split: str = "checkerboard",
                     encoder: str = "satclip", baselines: tuple[str, ...] = ("raw", "satclip-random")) -> pd.DataFrame:
    """Per task: does ``encoder`` beat every baseline on the primary metric (one probe and split)?

    The research goal of the default run: on the checkerboard split with the MLP probe the
    pretrained embedding beats raw coordinates and the untrained encoder on at least 4 of 7 tasks.
    """
    from satclip.evaluation.metrics import PRIMARY_METRIC

    rows = []
    for task, sub in results[(results["probe"] == probe) & (results["split"] == split)].groupby("task", sort=False):
        metric = PRIMARY_METRIC[TASKS[task].kind] if task in TASKS else "r2"
        scores = sub[sub["metric"] == metric].set_index("encoder")["mean"]
        row = {"task": task, "metric": metric, encoder: scores.get(encoder, np.nan)}
        row.update({b: scores.get(b, np.nan) for b in baselines})
        row["beats_all"] = bool(all(row[encoder] > row[b] for b in baselines)) if not np.isnan(row[encoder]) else False
        rows.append(row)
    return pd.DataFrame(rows)
