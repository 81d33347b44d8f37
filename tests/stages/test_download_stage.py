"""The download stage end to end on tiny parameters: library call and the papermill notebook."""

from __future__ import annotations

import json

import pandas as pd
import papermill as pm
import pytest

from conftest import REPO
from satclip.config import Params, from_dict, to_dict
from satclip.stages.download import run_download

TINY = {
    "seed": 0,
    "download": {
        "labels": {"tasks": ["population", "biomes", "air_temperature"], "n_points": 300},
        "bluemarble": {"n_points": 50, "patch_px": 8},
    },
}


def tiny_params(tmp_path, geodata, **download) -> Params:
    data = {**TINY, "paths": {"data": str(tmp_path / "data"), "results": str(tmp_path / "results"),
                              "mirror": str(geodata)}}
    data["download"] = {**TINY["download"], **download}
    if "pretrain_set" in download:  # the pretrain stage must read the set the download stage builds
        data["pretrain"] = {"dataset": download["pretrain_set"]}
    return from_dict(Params, data, "")


def test_run_download_writes_tables_set_and_metrics(tmp_path, geodata):
    params = tiny_params(tmp_path, geodata)
    summary = run_download(params)
    assert list(summary.rows) == ["population", "biomes", "air_temperature"]
    assert summary.rows["air_temperature"] == 3076
    for task, path in summary.label_tables.items():
        assert len(pd.read_parquet(path)) == summary.rows[task]
    assert summary.pretrain_items == 50
    metrics = json.loads((tmp_path / "results" / "metrics" / "download.json").read_text())
    assert metrics["rows"]["biomes"] == summary.rows["biomes"] and metrics["pretrain_items"] == 50
    # deterministic in the seed: a second run writes the same tables
    first = pd.read_parquet(summary.label_tables["population"])
    run_download(params)
    pd.testing.assert_frame_equal(first, pd.read_parquet(summary.label_tables["population"]))


def test_s2_sample_pretraining_set(tmp_path, geodata):
    params = tiny_params(tmp_path, geodata, pretrain_set="s2-sample",
                         labels={"tasks": ["air_temperature"], "n_points": 50})
    summary = run_download(params)
    assert summary.pretrain_items == 20
    assert len(list((summary.pretrain_root / "images").glob("*.tif"))) == 20


@pytest.mark.timeout(240)
def test_notebook_runs_and_shows_maps_and_patches(tmp_path, geodata):
    params = to_dict(tiny_params(tmp_path, geodata))
    out = tmp_path / "10_download.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "10_download.ipynb"), str(out), parameters=params,
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    nb = json.loads(out.read_text())
    images = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 2 * 3 + 1  # a map and a histogram per task, one patch grid
    assert (tmp_path / "results" / "metrics" / "download.json").is_file()
