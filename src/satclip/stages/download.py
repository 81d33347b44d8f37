"""The download stage: raw files -> label tables and the pretraining set.

``run_download(params)`` is what ``notebooks/10_download.ipynb`` calls; it returns a summary
that the notebook shows and that is written to ``results/metrics/download.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from satclip.config import Params
from satclip.data import labels as labels_mod
from satclip.data.bluemarble import build_bluemarble
from satclip.data.sampling import sample_land
from satclip.io import write_json

# Independent random streams derived from the global seed (numpy SeedSequence entropy).
STREAM_LABEL_POINTS = 1
STREAM_BLUEMARBLE = 2


@dataclass
class DownloadSummary:
    """What the stage produced."""

    label_tables: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    pretrain_root: Path | None = None
    pretrain_items: int = 0
    seconds: float = 0.0

    def as_metrics(self) -> dict:
        """JSON-able metrics for ``dvc metrics show``."""
        return {"rows": self.rows, "pretrain_items": self.pretrain_items,
                "seconds": round(self.seconds, 1)}


def data_paths(params: Params) -> dict[str, Path]:
    """The folders this stage writes."""
    data = Path(params.paths.data)
    return {"raw": data / "raw", "labels": data / "labels", "pretrain": data / "pretrain"}


def mirror_of(params: Params) -> str | None:
    """The mirror folder: ``paths.mirror`` if set, else ``$SATCLIP_DATA_MIRROR`` (may be None)."""
    return params.paths.mirror or os.environ.get("SATCLIP_DATA_MIRROR") or None


def build_label_tables(params: Params) -> dict[str, pd.DataFrame]:
    """Build every task's table listed in ``download.labels.tasks`` (in that order)."""
    cfg = params.download.labels
    paths = data_paths(params)
    mirror = mirror_of(params)
    countries = labels_mod.countries_frame(paths["raw"], mirror)
    points = sample_land(cfg.n_points, [params.seed, STREAM_LABEL_POINTS], cfg.min_lat, cfg.max_lat)
    points = labels_mod.add_continent(points, countries)
    return {task: labels_mod.build_task(task, points, raw_dir=paths["raw"], mirror=mirror,
                                        countries=countries, min_class_count=cfg.min_class_count)
            for task in cfg.tasks}


def build_pretrain_set(params: Params) -> tuple[Path, int]:
    """Prepare the pretraining set named by ``download.pretrain_set``; return (root, items)."""
    name = params.download.pretrain_set
    root = data_paths(params)["pretrain"] / name
    if name == "bluemarble":
        bm = params.download.bluemarble
        build_bluemarble(root, bm.n_points, [params.seed, STREAM_BLUEMARBLE], bm.min_lat,
                         bm.max_lat, bm.patch_px)
    elif name == "s2-sample":
        from satclip.data.s2_100k import prepare_s2_sample

        prepare_s2_sample(root, data_paths(params)["raw"], mirror_of(params))
    elif name == "s2-100k":
        from satclip.data.s2_100k import download_s2_100k

        s2 = params.download.s2_100k
        download_s2_100k(root, shards=s2.shards, repo=s2.repo, revision=s2.revision)
    else:  # the config schema rejects other names; keep the error explicit anyway
        raise ValueError(f"unknown pretraining set {name!r}")
    return root, len(pd.read_csv(root / "index.csv"))


def run_download(params: Params, metrics_path: str | os.PathLike | None = None) -> DownloadSummary:
    """Run the whole stage; write label tables, the pretraining set and (optionally) metrics."""
    start = time.perf_counter()
    summary = DownloadSummary()
    out = data_paths(params)["labels"]
    for task, table in build_label_tables(params).items():
        summary.label_tables[task] = labels_mod.write_table(table, out / f"{task}.parquet")
        summary.rows[task] = len(table)
    summary.pretrain_root, summary.pretrain_items = build_pretrain_set(params)
    summary.seconds = time.perf_counter() - start
    if metrics_path is not None:
        write_json(summary.as_metrics(), metrics_path)
    return summary




def sample_pretrain_items(params: Params, n: int = 24) -> tuple[list, list]:
    """``n`` random items of the prepared pretraining set: (images as (C, H, W) arrays, (lon, lat))."""
    import numpy as np

    from satclip.data.pretrain_sets import open_pretrain_set

    name = params.download.pretrain_set
    dataset = open_pretrain_set(name, data_paths(params)["pretrain"] / name, params.download.s2_100k.on_corrupt)
    rng = np.random.default_rng(params.seed)
    picks = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in sorted(picks)]
    return [it["image"].numpy() for it in items], [it["point"].tolist() for it in items]
