"""A stage notebook opened by hand reads params.yaml and writes only into scratch/."""

from __future__ import annotations

import os

import pytest

from satclip.handrun import HandRunError, notebook_params, project_root


def test_hand_run_reads_params_yaml_and_links_inputs(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params.yaml").write_text("seed: 7\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  extract:\n    cmd: x\n    deps:\n      - ${paths.data}/labels\n"
        "      - ${paths.results}/model\n      - src/satclip\n    outs:\n      - ${paths.data}/embeddings\n")
    (root / "data" / "labels").mkdir(parents=True)
    (root / "data" / "labels" / "a.parquet").write_text("x")
    (root / "results" / "model").mkdir(parents=True)
    monkeypatch.chdir(root / "notebooks")  # where Jupyter starts a notebook's kernel
    assert project_root() == root.resolve()
    params = notebook_params({"seed": 0, "paths": {}, "pretrain": {}, "extract": {}}, "extract")
    assert params.seed == 7 and os.getcwd() == str(root.resolve())
    assert params.paths.data == "scratch/extract/data" and params.paths.results == "scratch/extract/results"
    link = root / "scratch" / "extract" / "data" / "labels"
    assert link.is_symlink() and (link / "a.parquet").read_text() == "x"
    assert (root / "scratch" / "extract" / "results" / "model").is_symlink()
    # under papermill (sections injected) nothing changes
    injected = notebook_params({"seed": 3, "paths": {"data": "d"}}, "extract")
    assert injected.seed == 3 and injected.paths.data == "d"


def test_hand_run_outside_a_project_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HandRunError, match="no dvc.yaml and params.yaml"):
        notebook_params({"seed": 0, "paths": {}}, "extract")
