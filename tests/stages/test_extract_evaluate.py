"""Extract, evaluate and tables stages on tiny data, including an unavailable encoder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from satclip.config import Params, from_dict
from satclip.stages.download import run_download
from satclip.stages.evaluate import pretraining_gain, run_evaluate, write_tables
from satclip.stages.extract import grid_embeddings, load_embeddings, run_extract

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
    lon, lat, grids = grid_embeddings(params)  # the embedding-map grid, for available encoders only
    assert set(grids) == {"satclip-random", "sh", "raw"} and grids["sh"].shape == (len(lon), 16)
    assert len(lon) > 10_000 and np.all(np.abs(lat) <= 90)
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


def test_figures_and_report(params):
    """The figures stage draws from the results on disk; the index links only files that exist."""
    import re
    from pathlib import Path

    from satclip.report import params_hash, render_readme, write_report
    from satclip.stages.figures import run_figures

    run_extract(params)
    for task in TASKS:
        run_evaluate(params, task)
    write_tables(params)
    results = Path(params.paths.results)
    with pytest.raises(FileNotFoundError, match="pretrain_history.csv"):
        run_figures(params)
    history = pd.DataFrame({"epoch": [0, 1], "train_loss": [5.0, 4.0], "val_loss": [5.1, 4.2], "val_top1": [0.01, 0.05],
                            "val_top5": [0.05, 0.2], "val_median_km": [8000.0, 5000.0], "logit_scale": [14.3, 14.5]})
    (results / "plots").mkdir(parents=True, exist_ok=True)
    history.to_csv(results / "plots" / "pretrain_history.csv", index=False)
    (results / "figures" / "summary").mkdir(parents=True, exist_ok=True)
    (results / "figures" / "summary" / "task_gone.png").write_bytes(b"stale")
    written = run_figures(params)
    names = [f.name for f in written]
    # biomes is the one headline task here; air temperature gets its own chart; satclip is unavailable
    assert names == ["embedding_maps", "headline", "task_air_temperature", "heatmap_linear_checkerboard",
                     "pretrain_curves"]
    for f in written:
        assert f.png.read_bytes()[:4] == b"\x89PNG" and f.png.with_suffix(".pdf").is_file() and f.description
    assert not (results / "figures" / "summary" / "task_gone.png").exists()  # stale figures removed
    index, readme = write_report(params, written, pending=["notebooks/90_figures.html"])
    links = re.findall(r'(?:href|src)="([^"]+)"', index.read_text())
    assert "figures/summary/headline.png" in links and "tables/downstream.csv" in links
    assert "notebooks/90_figures.html" in links  # pending: the stage renders it next
    missing = [link for link in links if not (results / link).exists() and link != "notebooks/90_figures.html"]
    assert not missing, missing
    assert not any(link.startswith(("http:", "https:", "//")) for link in links)  # opens offline
    text = readme.read_text()
    assert params_hash(params) in text and "git commit" in text and "torch" in text
    assert "## Main table: linear probe" in text and "### linear probe, checkerboard split" in text  # no MLP here
    assert render_readme(params, results) == text
    # the hash ignores paths but not the science
    moved = from_dict(Params, {**_as_dict(params), "paths": {"data": "elsewhere"}}, "")
    changed = from_dict(Params, {**_as_dict(params), "seed": 1}, "")
    assert params_hash(moved) == params_hash(params) != params_hash(changed)


def _as_dict(params: Params) -> dict:
    from satclip.config import to_dict

    return to_dict(params)
