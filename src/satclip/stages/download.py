"""The download stage: raw files -> label tables and the pretraining set.

``run_download(params)`` is what ``notebooks/10_download.ipynb`` calls; it writes
``<data>/labels/<task>.parquet``, the pretraining set and ``<results>/metrics/download.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from satclip.config import Params
from satclip.data import labels as labels_mod
from satclip.data.prepare import build_label_tables, build_pretrain_set
from satclip.io import write_json
from satclip.paths import Layout


@dataclass
class DownloadSummary:
    """What the stage produced."""

    label_tables: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    pretrain_root: Path | None = None
    pretrain_items: int = 0
    seconds: float = 0.0


def run_download(params: Params) -> DownloadSummary:
    """Run the whole stage: label tables, the pretraining set and the stage's metrics."""
    start = time.perf_counter()
    layout = Layout.of(params)
    summary = DownloadSummary()
    for task, table in build_label_tables(params).items():
        summary.label_tables[task] = labels_mod.write_table(table, layout.label_table(task))
        summary.rows[task] = len(table)
    summary.pretrain_root, summary.pretrain_items = build_pretrain_set(params)
    summary.seconds = time.perf_counter() - start
    write_json({"rows": summary.rows, "pretrain_items": summary.pretrain_items}, layout.metrics("download"))
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.download [params.yaml]``: run the stage outside its notebook."""
    from satclip.stages.runner import run_function

    return run_function(run_download, argv)


if __name__ == "__main__":
    raise SystemExit(main())
