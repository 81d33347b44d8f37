"""The tables stage: every task's results joined into ``Layout.downstream_csv`` and its renderings.

Writes ``<results>/tables/downstream.{csv,md,tex}``, every fit's scores (``scores.csv``), the
paired verdict (``verdict.{csv,md}``) and ``<results>/metrics/downstream.json``.
"""

from __future__ import annotations

import pandas as pd

from satclip.config import Params
from satclip.evaluation.tables import collect_results, collect_scores, write_tables
from satclip.paths import Layout


def run_tables(params: Params) -> pd.DataFrame:
    """Join the tasks' tables, write the downstream tables and metrics; return the joined table."""
    layout = Layout.of(params)
    results = collect_results(layout, params.download.labels.tasks)
    write_tables(results, layout, collect_scores(layout, params.download.labels.tasks))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.tables [params.yaml]``: run the stage outside its notebook."""
    from satclip.stages.runner import run_function

    return run_function(run_tables, argv)


if __name__ == "__main__":
    raise SystemExit(main())
