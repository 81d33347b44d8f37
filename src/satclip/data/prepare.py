"""What the download stage prepares: every task's label table and the pretraining set.

The functions read ``params`` (the ``seed``, ``paths`` and ``download`` sections) and write under
``Layout.labels`` and ``Layout.pretrain_sets``; ``satclip.stages.download`` runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from satclip.data import labels as labels_mod
from satclip.data.bluemarble import build_bluemarble
from satclip.data.pretrain_sets import open_pretrain_set
from satclip.data.sampling import sample_land
from satclip.paths import Layout, mirror_of
from satclip.streams import DataStream

if TYPE_CHECKING:
    from satclip.config import Params


def build_label_tables(params: Params) -> dict[str, pd.DataFrame]:
    """Build every task's table listed in ``download.labels.tasks`` (in that order)."""
    cfg = params.download.labels
    layout = Layout.of(params)
    mirror = mirror_of(params)
    countries = labels_mod.countries_frame(layout.raw, mirror)
    points = sample_land(cfg.n_points, [params.seed, DataStream.LABEL_POINTS], cfg.min_lat, cfg.max_lat)
    points = labels_mod.add_continent(points, countries)
    return {task: labels_mod.build_task(task, points, raw_dir=layout.raw, mirror=mirror,
                                        countries=countries, min_class_count=cfg.min_class_count)
            for task in cfg.tasks}


def build_pretrain_set(params: Params) -> tuple[Path, int]:
    """Prepare the pretraining set named by ``download.pretrain_set``; return (root, items)."""
    name = params.download.pretrain_set
    layout = Layout.of(params)
    root = layout.pretrain_set(name)
    if name == "bluemarble":
        bm = params.download.bluemarble
        build_bluemarble(root, bm.n_points, [params.seed, DataStream.BLUEMARBLE], bm.min_lat,
                         bm.max_lat, bm.patch_px)
    elif name == "s2-sample":
        from satclip.data.s2_100k_download import prepare_s2_sample

        prepare_s2_sample(root, layout.raw, mirror_of(params))
    elif name == "s2-100k":
        from satclip.data.lock import DownloadLock
        from satclip.data.s2_100k_download import download_s2_100k

        s2 = params.download.s2_100k
        download_s2_100k(root, shards=s2.shards, repo=s2.repo, revision=s2.revision,
                         lock=DownloadLock(layout.download_lock))
    else:  # the config schema rejects other names; keep the error explicit anyway
        raise ValueError(f"unknown pretraining set {name!r}")
    return root, len(pd.read_csv(root / "index.csv"))


def sample_pretrain_items(params: Params, n: int = 24) -> tuple[list, list]:
    """``n`` random items of the prepared pretraining set: (images as (C, H, W) arrays, (lon, lat))."""
    name = params.download.pretrain_set
    dataset = open_pretrain_set(name, Layout.of(params).pretrain_set(name), params.download.s2_100k.on_corrupt)
    rng = np.random.default_rng(params.seed)
    picks = rng.choice(len(dataset), size=min(n, len(dataset)), replace=False)
    items = [dataset[int(i)] for i in sorted(picks)]
    return [it["image"].numpy() for it in items], [it["point"].tolist() for it in items]
