"""Extract, evaluate and tables stages on tiny data, including an unavailable encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_stage_params
from satclip.config import Params
from satclip.extraction.store import grid_embeddings, load_embeddings, load_run_embeddings
from satclip.paths import Layout
from satclip.stages.evaluate import run_evaluate
from satclip.stages.extract import run_extract
from satclip.stages.tables import run_tables


@pytest.fixture(scope="module")
def params(tmp_path_factory, geodata) -> Params:
    return tiny_stage_params(tmp_path_factory, geodata)


def test_extract_writes_row_aligned_embeddings_and_reports_unavailable(params):
    summary = run_extract(params).set_index("encoder")
    assert not summary.loc["satclip", "available"] and "satclip.ckpt" in summary.loc["satclip", "note"]
    assert summary.loc["sh", "dim"] == 16 and summary.loc["satclip-random", "dim"] == 8
    table = pd.read_parquet(f"{params.paths.data}/labels/biomes.parquet")
    emb, reason = load_embeddings(params, "sh", "biomes")
    assert emb.shape == (len(table), 16) and emb.dtype == np.float32 and reason == ""
    # each distinct point is embedded once and shared between tasks: the same rows as per task
    from satclip.embed import embed_coordinates
    from satclip.extraction.named_encoders import resolve_named_encoder

    direct = embed_coordinates(resolve_named_encoder("sh", params, 0).module, table[["lon", "lat"]].to_numpy())
    np.testing.assert_allclose(emb, direct, rtol=0, atol=1e-6)
    emb, reason = load_embeddings(params, "satclip", "biomes")
    assert emb is None and "unavailable" in reason
    lon, lat, grids = grid_embeddings(params)  # the embedding-map grid, for available encoders only
    assert set(grids) == {"satclip-random", "sh", "raw"} and grids["sh"].shape == (len(lon), 16)
    assert len(lon) > 10_000 and np.all(np.abs(lat) <= 90)
    metrics = json.loads(open(f"{params.paths.results}/metrics/extract.json").read())
    assert metrics["raw"]["available"] and not metrics["satclip"]["available"]
    # collapse diagnostics of every available encoder (land grid, mean over runs)
    assert metrics["sh"]["sh_linear_share"] == pytest.approx(1.0) and metrics["sh"]["k99"] <= 16
    assert metrics["satclip-random"]["runs"] == 3 and 1 <= metrics["satclip-random"]["participation_ratio"] <= 8
    assert "participation_ratio" not in metrics["satclip"]
    # the untrained encoder is seeded: a second extraction gives the same embeddings
    first = load_embeddings(params, "satclip-random", "biomes")[0]
    run_extract(params)
    np.testing.assert_array_equal(load_embeddings(params, "satclip-random", "biomes")[0], first)
    # one untrained initialization per pretraining run, each its own draw
    runs, _ = load_run_embeddings(params, "satclip-random", "biomes")
    assert len(runs) == params.pretrain.runs == 3 and not np.allclose(runs[0], runs[2])
    assert len(load_run_embeddings(params, "sh", "biomes")[0]) == 1


def test_evaluate_and_tables(params):
    run_extract(params)
    for task in params.download.labels.tasks:
        evaluation = run_evaluate(params, task)
        res = evaluation.results
        missing = res[res["encoder"] == "satclip"]
        assert missing["mean"].isna().all() and missing["note"].str.contains("unavailable").all()
        sh = res[(res["encoder"] == "sh") & (res["split"] == "random")]
        assert sh["mean"].notna().all() and (sh["n_seeds"] == 2).all()
    results = run_tables(params)
    assert list(dict.fromkeys(results["task"])) == params.download.labels.tasks
    md = open(f"{params.paths.results}/tables/downstream.md").read()
    assert "linear probe, random split" in md and "**" in md
    layout = Layout.of(params)
    verdict = pd.read_csv(layout.verdict_csv, keep_default_na=False, na_values=[""])
    assert set(verdict["task"]) == set(params.download.labels.tasks)
    assert (verdict["outcome"] == "n/a").all() and verdict["note"].str.contains("unavailable").all()  # no satclip
    rnd = res[(res["encoder"] == "satclip-random") & res["mean"].notna()]
    assert (rnd["n_pretrain_runs"] == 2).all()  # 2 seeds pair with the first 2 of 3 initializations
    downstream = json.loads(layout.metrics("downstream").read_text())
    assert downstream["verdict"]["linear"]["random"]["vs raw"]["n/a"] == len(params.download.labels.tasks)
    assert layout.scores_csv.is_file() and "n/a" in (layout.tables / "verdict.md").read_text()
    with pytest.raises(ValueError, match="not in download.labels.tasks"):
        run_evaluate(params, "elevation")

