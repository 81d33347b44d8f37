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
from satclip.evaluation.headline import HEADLINE_TASKS, PRETRAIN_KEYS, VALIDATION_PROTOCOL, WIN_PROTOCOLS
from satclip.sweeps.exp_table import exp_show_command

DVC = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")


def test_command_keeps_the_headline_and_passes_arguments_through():
    cmd = exp_show_command(["-n", "2"], dvc="dvc")
    assert cmd[:4] == ["dvc", "exp", "show", "--only-changed"] and cmd[-2:] == ["-n", "2"]


@pytest.mark.skipif(not Path(DVC).exists(), reason="dvc is not installed")
def test_a_repository_with_every_param_of_params_yaml_fits_200_columns(tmp_path):
    """The real params.yaml (~120 keys), deps with hashes, every headline metric, a swept list param: all shown.

    The same check as ``.ci/run`` after its sweep (which varies ``evaluate.seeds``), on every metric a
    run can write (``evaluation.headline``'s keys), so a new headline metric that pushes the swept param
    out of 200 columns fails here, not only in CI.
    """
    env = {**os.environ, "COLUMNS": "200", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@invalid"}
    run = lambda *a: subprocess.run(a, cwd=tmp_path, env=env, check=True, capture_output=True, text=True)  # noqa: E731
    run("git", "init", "-q")
    run(DVC, "init", "-q")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    tasks = yaml.safe_load((REPO / "params.yaml").read_text())["download"]["labels"]["tasks"][:HEADLINE_TASKS]
    counts = [key for _, _, key in WIN_PROTOCOLS] + [VALIDATION_PROTOCOL[2]]
    headline = {"top1": 0.3147, "median_km": 1431.2637, **dict.fromkeys(counts, 7), **dict.fromkeys(tasks, -0.5432)}
    assert len(headline) == len(PRETRAIN_KEYS) + len(counts) + len(tasks)
    for i in range(12):
        (tmp_path / f"dep{i:02d}.txt").write_text(str(i))
    stage = {"cmd": f"echo '{json.dumps(headline)}' > headline.json", "deps": [f"dep{i:02d}.txt" for i in range(12)],
             "params": ["seed", "pretrain.trainer.epochs", "evaluate.seeds"],
             "metrics": [{"headline.json": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"tables": stage}}))
    run(DVC, "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    run(DVC, "exp", "run", "-q", "--name", "sweep-seed1", "--set-param", "evaluate.seeds=[1,2]")
    out = subprocess.run([sys.executable, "-m", "satclip.sweeps.exp_table", "--no-pager"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 200, out
    assert all(name in lines[1] for name in headline), out
    assert "evaluate.seeds" in lines[1] and "sweep-seed1" in out, out   # the swept param, the experiment
    assert "dep00.txt" not in out and "pretrain.trainer.epochs" not in out   # no hash, no unchanged param
    plain = subprocess.run([DVC, "exp", "show", "--no-pager"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert not all(name in plain.splitlines()[1] for name in headline)   # what satclip exp is for
