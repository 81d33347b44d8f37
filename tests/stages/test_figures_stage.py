"""The figures stage and the report on tiny real results (satclip itself unavailable: no checkpoint)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import tiny_stage_params
from satclip.config import Params, from_dict, params_hash, to_dict
from satclip.reporting.index import render_readme, write_report
from satclip.stages.evaluate import run_evaluate
from satclip.stages.extract import run_extract
from satclip.stages.figures import run_figures
from satclip.stages.tables import run_tables


@pytest.fixture(scope="module")
def params(tmp_path_factory, geodata) -> Params:
    return tiny_stage_params(tmp_path_factory, geodata)


def test_figures_and_report(params):
    """The figures stage draws from the results on disk; the index links only files that exist."""
    run_extract(params)
    for task in params.download.labels.tasks:
        run_evaluate(params, task)
    run_tables(params)
    results = Path(params.paths.results)
    with pytest.raises(FileNotFoundError, match="pretrain_history.csv"):
        run_figures(params)
    history = pd.DataFrame({"epoch": [0, 1], "train_loss": [5.0, 4.0], "val_loss": [5.1, 4.2], "val_top1": [0.01, 0.05],
                            "val_top5": [0.05, 0.2], "val_median_km": [8000.0, 5000.0], "scale": [14.3, 14.5]})
    (results / "plots").mkdir(parents=True, exist_ok=True)
    history.to_csv(results / "plots" / "pretrain_history.csv", index=False)
    (results / "figures" / "summary").mkdir(parents=True, exist_ok=True)
    (results / "figures" / "summary" / "task_gone.png").write_bytes(b"stale")
    written = run_figures(params)
    names = [f.name for f in written]
    # biomes is the one headline task here; air temperature gets its own chart; satclip is unavailable
    assert names == ["embedding_maps", "headline", "task_air_temperature", "heatmap",
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
    moved = from_dict(Params, {**to_dict(params), "paths": {"data": "elsewhere"}}, "")
    changed = from_dict(Params, {**to_dict(params), "seed": 1}, "")
    assert params_hash(moved) == params_hash(params) != params_hash(changed)

