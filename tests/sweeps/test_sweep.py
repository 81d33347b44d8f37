"""Sweeps and their comparison: validation, the dvc commands, and a two-point sweep end to end.

The end-to-end test runs the real ``dvc exp`` queue in a scratch git + DVC repository whose one
stage stands in for the pipeline: it reads the same ``params.yaml`` schema and writes metrics
in the pipeline's format (``downstream.json``, ``pretrain.json``), so it takes seconds. The
pipeline's own stages under a sweep are exercised by ``.ci/run``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from satclip.config import ConfigError, load_params
from satclip.sweeps.sweep import load_sweep, main, queue_commands, select_points, set_args

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_load_sweep_validates_every_point(tmp_path):
    good = _write(tmp_path / "l.yaml", {"description": "L", "x": "pretrain.location.legendre_polys",
                                        "points": {"l4": {"pretrain.location.legendre_polys": 4},
                                                   "l6": {"pretrain": {"location": {"legendre_polys": 6}}}}})
    sweep = load_sweep(good, ROOT / "params.yaml")
    assert sweep.name == "l" and sweep.points == {"l4": {"pretrain.location.legendre_polys": 4},
                                                  "l6": {"pretrain.location.legendre_polys": 6}}
    assert sweep.experiment("l4") == "l-l4"
    assert set_args(sweep, "l6") == ["-S", "pretrain.location.legendre_polys=6"]
    bad = {"points": {"a": {"pretrain.location.legendre_poly": 4}}}
    with pytest.raises(ConfigError, match=r"point 'a'.*legendre_poly.*legendre_polys"):
        load_sweep(_write(tmp_path / "b.yaml", bad), ROOT / "params.yaml")
    with pytest.raises(ConfigError, match="point name 'A b'"):
        load_sweep(_write(tmp_path / "c.yaml", {"points": {"A b": {"seed": 1}}}), ROOT / "params.yaml")
    with pytest.raises(ConfigError, match="x .* must be set by every point"):
        load_sweep(_write(tmp_path / "d.yaml", {"x": "seed", "points": {"a": {"seed": 1}, "b": {"evaluate.seeds": [1]}}}),
                   ROOT / "params.yaml")
    with pytest.raises(ConfigError, match="unknown sweep key.*point"):
        load_sweep(_write(tmp_path / "e.yaml", {"point": {"a": {"seed": 1}}}), ROOT / "params.yaml")
    with pytest.raises(ConfigError, match="must be one of"):
        load_sweep(_write(tmp_path / "f.yaml", {"points": {"a": {"pretrain.location.network": "resnet"}}}),
                   ROOT / "params.yaml")


def test_some_points_only(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path / "w.yaml", {"points": {"w1": {"pretrain.location.w0_initial": 1.0},
                                                   "w10": {"pretrain.location.w0_initial": 10.0},
                                                   "w30": {"pretrain.location.w0_initial": 30.0}}})
    sweep = load_sweep(path, ROOT / "params.yaml")
    assert list(select_points(sweep, ["w30", "w10"]).points) == ["w10", "w30"]   # in the file's order
    assert select_points(sweep, None) == sweep
    with pytest.raises(ConfigError, match=r"no point\(s\) w5 \(points: w1, w10, w30\)"):
        select_points(sweep, ["w5"])
    monkeypatch.chdir(ROOT)
    assert main([str(path), "--points", "w10", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "w-w10" in out and "w-w1 " not in out and "w-w30" not in out
    assert main([str(path), "--points", "w5", "--dry-run"]) == 2
    assert "no point(s) w5" in capsys.readouterr().err


def test_queue_commands_apply_the_overlay_then_the_point_and_copy_the_caches(tmp_path, monkeypatch):
    overlay = _write(tmp_path / "base.yaml", {"pretrain": {"trainer": {"epochs": 2}}})
    sweep = load_sweep(_write(tmp_path / "s.yaml", {"overlay": str(overlay), "points": {
        "w": {"pretrain.image.cnn_widths": [8, 16]}}}), ROOT / "params.yaml")
    params = load_params(ROOT / "params.yaml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    (tmp_path / "data" / "raw").mkdir(parents=True)  # an old in-repo download cache: not copied
    (tmp_path / "results" / "metrics").mkdir(parents=True)  # tracked by git: in the copy already
    (tmp_path / "results" / "notebooks").mkdir(parents=True)
    [command] = queue_commands(sweep, params)
    assert command[:6] == ["dvc", "exp", "run", "--queue", "-n", "s-w"]
    # only paths that exist are copied
    assert command[6:10] == ["-C", "data/checkpoints", "-C", "results/notebooks"]
    assert command[10:] == ["-S", "pretrain.trainer.epochs=2", "-S", "pretrain.image.cnn_widths=[8,16]"]
    params.paths.data = str(tmp_path / "data")  # DVC would copy an absolute path onto itself
    with pytest.raises(ConfigError, match="paths.data .* must be a relative path"):
        queue_commands(sweep, params)


STUB_STAGE = '''"""Stands in for the pipeline: scores grow with L; fails without the copied run folder."""
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
assert pathlib.Path("data/checkpoints/source.txt").read_text() == "trained", "run folder not copied"
L = p["pretrain"]["location"]["legendre_polys"]
out = pathlib.Path("results/metrics")
out.mkdir(parents=True, exist_ok=True)
score = {"r2": L / 100, "mse": 1.0}
(out / "downstream.json").write_text(json.dumps({
    "population": {"satclip": {"mlp": {"checkerboard": score}}, "raw": {"mlp": {"checkerboard": {"r2": 0.1}}}},
    "biomes": {"satclip": {"mlp": {"checkerboard": {"accuracy": 0.5 + L / 100}}}}}))
(out / "pretrain.json").write_text(json.dumps({"val_top1": L / 1000, "val_median_km": 1000.0 / L}))
'''

STUB_DVC = '''stages:
  stub:
    cmd: python stage.py
    deps: [stage.py, data/checkpoints/source.txt]
    params: [pretrain.location]
    metrics:
      - results/metrics/downstream.json:
          cache: false
      - results/metrics/pretrain.json:
          cache: false
'''


@pytest.mark.timeout(300)
def test_two_point_sweep_end_to_end(tmp_path):
    if shutil.which("dvc", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("dvc is not installed in this environment")
    repo = tmp_path / "repo"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "DVC_NO_ANALYTICS": "1"}

    def sh(*args, check=True):
        return subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, check=check)

    repo.mkdir()
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")  # results/metrics tracked, the rest ignored
    _write(repo / "stage.py", STUB_STAGE)
    _write(repo / "dvc.yaml", STUB_DVC)
    _write(repo / "data" / "checkpoints" / "source.txt", "trained")
    _write(repo / "experiments" / "sweeps" / "legendre.yaml", {
        "description": "Legendre degree", "x": "pretrain.location.legendre_polys",
        "points": {"l4": {"pretrain.location.legendre_polys": 4}, "l6": {"pretrain.location.legendre_polys": 6}}})
    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    sh("dvc", "config", "core.autostage", "false")
    sh("dvc", "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "baseline")
    baseline = (repo / "results" / "metrics" / "downstream.json").read_text()

    sh("dvc", "exp", "save", "-n", "legendre-l4")  # an earlier run's experiment: the sweep must replace it
    run = sh(sys.executable, "-m", "satclip.sweeps.sweep", "legendre", "--jobs", "2", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (repo / "results" / "metrics" / "downstream.json").read_text() == baseline  # workspace untouched
    assert sh("git", "status", "--porcelain").stdout.strip() == ""

    compare = sh(sys.executable, "-m", "satclip.sweeps.compare", "legendre", check=False)
    assert compare.returncode == 0, compare.stdout + compare.stderr
    table = pd.read_csv(repo / "results" / "compare" / "legendre.csv")
    assert list(table["experiment"]) == ["legendre-l4", "legendre-l6"]
    assert list(table["pretrain.location.legendre_polys"]) == [4, 6]
    assert table["population"].tolist() == pytest.approx([0.04, 0.06])
    assert table["biomes"].tolist() == pytest.approx([0.54, 0.56])
    assert table["pretrain top-1"].tolist() == pytest.approx([0.004, 0.006])
    meta = json.loads((repo / "results" / "compare" / "legendre.json").read_text())
    assert meta["x"] == "pretrain.location.legendre_polys" and meta["probe"] == "mlp"
    assert "| l4 | 4 |" in (repo / "results" / "compare" / "legendre.md").read_text()

    missing = sh(sys.executable, "-m", "satclip.sweeps.compare", "nosuch", check=False)
    assert missing.returncode == 2 and "no sweep 'nosuch'" in missing.stderr and "legendre" in missing.stderr
    shows = json.loads(sh("dvc", "exp", "show", "--json").stdout)
    assert len(shows[-1]["experiments"]) == 2  # exactly the two points: the saved one was replaced


def test_a_failed_or_missing_experiment_is_reported(tmp_path):
    """``dvc exp run --run-all`` exits 0 when an experiment fails: the sweep reads the states."""
    from satclip.sweeps.sweep import failed_experiments

    shown = [{"name": "master", "experiments": [
        {"executor": {"state": "success"}, "revs": [{"name": "s-a", "error": None,
                                                     "data": {"timestamp": "2026-11-29T01:00:00"}}]},
        {"executor": {"state": "failed"}, "revs": [{"name": "s-b", "error": {"msg": "Experiment run failed"}}]}]},
        {"name": "older", "experiments": [  # an earlier run of the same name on an older commit
            {"executor": {"state": "success"}, "revs": [{"name": "s-c", "error": None,
                                                         "data": {"timestamp": "2026-11-28T09:00:00"}}]}]}]
    fake = _write(tmp_path / "dvc", f"#!{sys.executable}\nprint({json.dumps(json.dumps(shown))})\n")
    fake.chmod(0o755)
    since = "2026-11-29T00:59:00"
    assert failed_experiments({"s-a", "s-b", "s-c", "s-d"}, dvc=str(fake), since=since) == ["s-b", "s-c", "s-d"]
    assert failed_experiments({"s-a"}, dvc=str(fake), since=since) == []
    assert failed_experiments({"s-c"}, dvc=str(fake)) == []  # no lower bound: any successful run counts
