"""Downstream evaluation of location embeddings: splits, probes, metrics, results tables.

Typical use (one task)::

    from satclip.evaluation import EvaluateConfig, evaluate_task, markdown_tables
    rows = evaluate_task("biomes", table, {"satclip": emb, "raw": raw}, EvaluateConfig())
    print(markdown_tables(rows))
"""

from satclip.evaluation.config import EvaluateConfig, LinearConfig, MLPConfig, XGBoostConfig
from satclip.evaluation.metrics import PRIMARY_METRIC, classification_scores, regression_scores
from satclip.evaluation.probes import LinearProbe, MLPProbe, Probe, ProbeError, XGBoostProbe, make_probe
from satclip.evaluation.run import (
    RESULT_COLUMNS,
    EvaluationError,
    TaskEvaluation,
    check_embeddings,
    evaluate_task,
    predictions_for_map,
    run_task,
)
from satclip.evaluation.splits import (
    Split,
    checkerboard_split,
    continent_split,
    make_splits,
    random_split,
)
from satclip.evaluation.tables import (
    latex_tables,
    markdown_tables,
    metrics_json,
    sort_results,
    write_downstream_csv,
    write_metrics_json,
)

__all__ = [
    "PRIMARY_METRIC", "RESULT_COLUMNS", "EvaluateConfig", "EvaluationError", "LinearConfig",
    "LinearProbe", "MLPConfig", "MLPProbe", "Probe", "ProbeError", "Split", "TaskEvaluation",
    "XGBoostConfig", "XGBoostProbe", "check_embeddings", "checkerboard_split", "classification_scores",
    "continent_split", "evaluate_task", "latex_tables", "make_probe", "make_splits", "markdown_tables",
    "metrics_json", "predictions_for_map", "random_split", "regression_scores", "run_task",
    "sort_results", "write_downstream_csv", "write_metrics_json",
]
