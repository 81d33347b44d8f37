"""Extract, evaluate and tables stages on tiny data, including an unavailable encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from satclip.config import Params, from_dict
from satclip.stages.download import run_download
from satclip.stages.evaluate import pretraining_gain, run_evaluate, write_tables
from satclip.stages.extract import load_embeddings, run_extract

TASKS = ["biomes", "air_temperature"]


@pytest.fixture(scope="module")
def params(tmp_path_factory, geodata) -> Params:
    root = tmp_path_factory.mktemp("stages")
    p = from_dict(Params, {
        "paths": {"data": str(root / "data"), "results": str(root / "results"), "mirror": str(geodata)},
        "download": {"labels": {"tasks": TASKS, "n_points": 400}, "bluemarble": {"n_points": 20, "patch_px": 8}},
        "pretrain": {"location": {"legendre_polys": 4, "hidden_dim": 16, "embed_dim": 8}},
        # satclip has no checkpoint here: it must be reported unavailable, not crash the run
        "extract": {"encoders": ["satclip", "satclip-random", "sh", "raw"]},
        "evaluate": {"seeds": [0, 1], "probes": ["linear"], "splits": ["random", "checkerboard"],
                     "max_train_points": 300},
    }, "")
    run_download(p)
    return p


def test_extract_writes_row_aligned_embeddings_and_reports_unavailable(params):
    summary = run_extract(params).set_index("encoder")
    assert not summary.loc["satclip", "available"] and "satclip.ckpt" in summary.loc["satclip", "note"]
    assert summary.loc["sh", "dim"] == 16 and summary.loc["satclip-random", "dim"] == 8
    table = pd.read_parquet(f"{params.paths.data}/labels/biomes.parquet")
    emb, reason = load_embeddings(params, "sh", "biomes")
    assert emb.shape == (len(table), 16) and emb.dtype == np.float32 and reason == ""
    emb, reason = load_embeddings(params, "satclip", "biomes")
    assert emb is None and "unavailable" in reason
    metrics = json.loads(open(f"{params.paths.results}/metrics/extract.json").read())
    assert metrics["raw"]["available"] and not metrics["satclip"]["available"]
    # the untrained encoder is seeded: a second extraction gives the same embeddings
    first = load_embeddings(params, "satclip-random", "biomes")[0]
    run_extract(params)
    np.testing.assert_array_equal(load_embeddings(params, "satclip-random", "biomes")[0], first)


def test_evaluate_and_tables(params):
    run_extract(params)
    for task in TASKS:
        evaluation = run_evaluate(params, task)
        res = evaluation.results
        missing = res[res["encoder"] == "satclip"]
        assert missing["mean"].isna().all() and missing["note"].str.contains("unavailable").all()
        sh = res[(res["encoder"] == "sh") & (res["split"] == "random")]
        assert sh["mean"].notna().all() and (sh["n_seeds"] == 2).all()
    results = write_tables(params)
    assert list(dict.fromkeys(results["task"])) == TASKS
    md = open(f"{params.paths.results}/tables/downstream.md").read()
    assert "linear probe, random split" in md and "**" in md
    gain = pretraining_gain(results, probe="linear", split="checkerboard")
    assert list(gain["task"]) == TASKS and not gain["beats_all"].any()  # satclip is missing
    with pytest.raises(ValueError, match="not in download.labels.tasks"):
        run_evaluate(params, "elevation")
