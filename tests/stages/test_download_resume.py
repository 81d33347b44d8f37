"""An interrupted S2-100K download stage: the next `dvc repro` fetches only what is missing.

A real DVC project in a temporary folder runs the download stage (`python -m
satclip.stages.download`) against the loopback hub; the hub stalls in the middle of the second
shard, the test kills `dvc repro` (SIGKILL, process group) once the first shard is in the hub
cache, then runs `dvc repro` again. DVC deletes the stage's outputs before re-running it
(`data/pretrain` is not persistent), but the downloads live in the cache outside the project.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, FakeHub
from fake_s2 import PER_SHARD, serve_s2_100k

DVC = str(Path(sys.executable).with_name("dvc"))

DVC_YAML = """stages:
  download:
    cmd: python -m satclip.stages.download params.yaml
    outs:
      - data/labels
      - data/pretrain
      - results/metrics/download.json:
          cache: false
"""


def _project(root: Path, geodata: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"]["mirror"] = str(geodata)
    params["download"]["pretrain_set"] = "s2-100k"
    params["download"]["s2_100k"]["shards"] = 2
    params["download"]["labels"].update(tasks=["air_temperature"], n_points=200)
    params["pretrain"]["dataset"] = "s2-100k"
    params["pretrain"]["image"].update(in_channels=13)
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(DVC_YAML)
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"], [DVC, "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)


def _shard_cached(cache: Path, shard: str) -> bool:
    return any(p.name == f"{shard}.tar" and p.resolve().is_file() for p in cache.rglob(f"{shard}.tar"))


def test_interrupted_download_stage_resumes_on_the_next_repro(hub: FakeHub, tmp_path: Path, geodata: Path) -> None:
    serve_s2_100k(hub, tmp_path / "hub_src")
    root = tmp_path / "project"
    _project(root, geodata)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}  # the stage command `python` is this environment's
    hub_cache = Path(os.environ["HF_HUB_CACHE"])

    hub.stall.add("data/shard-00001.tar")
    proc = subprocess.Popen([DVC, "repro"], cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (_shard_cached(hub_cache, "shard-00000") and hub.gets("data/shard-00001.tar")):
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate()[0] if proc.poll() is not None else ""
            proc.kill()
            pytest.fail(f"the download did not reach the second shard (rc {proc.returncode}):\n{out}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # as a power cut or `kill -9` would
    proc.wait(30)
    hub.stall.clear()
    hub.release.set()
    assert not (root / "results" / "metrics" / "download.json").exists()

    done = subprocess.run([DVC, "repro"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(hub.gets("data/shard-00000.tar")) == 1, "the finished shard was downloaded again"
    assert len(hub.gets("data/shard-00001.tar")) == 2  # the interrupted one: fetched again, whole
    assert len(hub.gets("index.csv")) == 1  # the lock pinned main: nothing re-resolved
    index = pd.read_csv(root / "data" / "pretrain" / "s2-100k" / "index.csv")
    assert len(index) == 2 * PER_SHARD
    assert json.loads((root / "results" / "metrics" / "download.json").read_text())["pretrain_items"] == 2 * PER_SHARD
    # a re-parameterized run (another seed: DVC deletes data/pretrain) downloads nothing
    n = len(hub.requests)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["seed"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    again = subprocess.run([DVC, "repro", "--force"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(hub.requests) == n
