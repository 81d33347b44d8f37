"""`satclip exp`: the experiments' headline metrics in a 200-column terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imports import REPO
from satclip.sweeps.exp_table import exp_show_command

DVC = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")


def test_command_keeps_the_headline_and_passes_arguments_through():
    cmd = exp_show_command(["-n", "2"], dvc="dvc")
    assert cmd[:4] == ["dvc", "exp", "show", "--only-changed"] and cmd[-2:] == ["-n", "2"]


@pytest.mark.skipif(not Path(DVC).exists(), reason="dvc is not installed")
def test_a_repository_with_every_param_of_params_yaml_fits_200_columns(tmp_path):
    """The real params.yaml (~120 keys), deps with hashes, the headline metrics: all metrics shown."""
    env = {**os.environ, "COLUMNS": "200", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@invalid"}
    run = lambda *a: subprocess.run(a, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run(DVC, "init", "-q")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    headline = {"top1": 0.163, "median_km": 1431.2, "wins_mlp_cb": 0, "wins_mlp_asia": 1, "wins_mlp_africa": 1,
                "wins_xgb_cb": 2, "wins_lin_cb": 3, "population": 0.5432, "biomes": 0.7123}
    for i in range(12):
        (tmp_path / f"dep{i:02d}.txt").write_text(str(i))
    stage = {"cmd": f"echo '{json.dumps(headline)}' > headline.json", "deps": [f"dep{i:02d}.txt" for i in range(12)],
             "params": ["seed", "pretrain.trainer.epochs"], "metrics": [{"headline.json": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"tables": stage}}))
    run(DVC, "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    out = subprocess.run([sys.executable, "-m", "satclip.sweeps.exp_table", "--no-pager"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 200, out
    assert all(name in lines[1] for name in headline), out
    assert "dep00.txt" not in out and "pretrain.trainer.epochs" not in out   # no hash, no unchanged param
    plain = subprocess.run([DVC, "exp", "show", "--no-pager"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert not all(name in plain.splitlines()[1] for name in headline)   # what satclip exp is for
