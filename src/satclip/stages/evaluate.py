"""The evaluate stage (one DVC ``foreach`` entry per task).

Per task: ``Layout.task_table(task)`` (tidy rows, see ``satclip.evaluation.run.RESULT_COLUMNS``),
``Layout.task_scores(task)`` (every fit's scores) and ``Layout.predictions(task)`` (test predictions of the first seed, for maps); the report draws
the figures under ``Layout.task_figures``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from satclip.config import Params
from satclip.data.labels import TASKS
from satclip.evaluation.run import TaskEvaluation, run_task
from satclip.evaluation.tidy import write_downstream_csv, write_scores_csv
from satclip.extraction.store import load_run_embeddings
from satclip.io import atomic_path, write_text
from satclip.paths import Layout


def run_evaluate(params: Params, task: str) -> TaskEvaluation:
    """Evaluate every extracted encoder on ``task``; write its tidy table and predictions."""
    if task not in params.download.labels.tasks:
        raise ValueError(f"task {task!r} is not in download.labels.tasks {params.download.labels.tasks}")
    layout = Layout.of(params)
    table = pd.read_parquet(layout.label_table(task))
    embeddings: dict[str, list[np.ndarray]] = {}  # one embedding per pretraining run
    unavailable: dict[str, str] = {}
    for encoder in params.extract.encoders:
        emb, reason = load_run_embeddings(params, encoder, task)
        if emb is None:
            unavailable[encoder] = reason
        else:
            embeddings[encoder] = emb
    evaluation = run_task(task, table, embeddings, params.evaluate, unavailable)
    write_downstream_csv(evaluation.results, layout.task_table(task))
    write_scores_csv(evaluation.scores, layout.task_scores(task))
    # seconds per fit and the chosen hyper-parameters: a log, not a result (no DVC output)
    write_text(layout.logs / f"evaluate_{task}_fits.csv", evaluation.timings.to_csv(index=False, float_format="%.3f"))
    predictions = evaluation.predictions.copy()
    if TASKS[task].kind == "classification":  # class labels as strings (Parquet needs one type)
        predictions[["target", "prediction"]] = predictions[["target", "prediction"]].astype(str)
    with atomic_path(layout.predictions(task)) as tmp:
        predictions.to_parquet(tmp, index=False)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.evaluate TASK [params.yaml]``: run the stage outside its notebook."""
    import sys

    from satclip.stages.runner import run_function

    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        print("usage: python -m satclip.stages.evaluate TASK [params.yaml]", file=sys.stderr)
        return 2
    task = args.pop(0)
    return run_function(lambda params: run_evaluate(params, task), args)


if __name__ == "__main__":
    raise SystemExit(main())
