"""The tables stage: every task's results joined into ``Layout.downstream_csv`` and its renderings.

Writes ``<results>/tables/downstream.{csv,md,tex}``, every fit's scores (``scores.csv``), the
paired verdict (``verdict.{csv,md}``), ``<results>/metrics/downstream.json`` and the headline
metrics that ``dvc exp show`` lists (``<results>/metrics/headline.json``, ``evaluation.headline``).
"""

from __future__ import annotations

import json

import pandas as pd

from satclip.config import Params
from satclip.evaluation.headline import headline_metrics
from satclip.evaluation.tables import VALIDATION_VERDICT, collect_results, collect_scores, write_tables
from satclip.io import write_json
from satclip.paths import Layout


def run_tables(params: Params) -> pd.DataFrame:
    """Join the tasks' tables, write the downstream tables and metrics; return the joined table."""
    layout = Layout.of(params)
    tasks = params.download.labels.tasks
    results = collect_results(layout, tasks)
    verdict = write_tables(results, layout, collect_scores(layout, tasks))
    pretrain_json = layout.metrics("pretrain")
    pretrain = json.loads(pretrain_json.read_text()) if pretrain_json.is_file() else None
    validation = json.loads(layout.metrics("downstream").read_text()).get(VALIDATION_VERDICT)
    write_json(headline_metrics(results, verdict, tasks, pretrain, validation), layout.metrics("headline"))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.tables [params.yaml]``: run the stage outside its notebook."""
    from satclip.stages.runner import run_function

    return run_function(run_tables, argv)


if __name__ == "__main__":
    raise SystemExit(main())
