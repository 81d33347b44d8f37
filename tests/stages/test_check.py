"""The check stage: fingerprints that change exactly when a stage's params or code change."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from imports import REPO, imports_of_source, stage_files
from satclip.config import ConfigError
from satclip.paths import STAGE_NOTEBOOKS, Layout, notebook_template
from satclip.stages.check import main, stage_fingerprint, write_fingerprints


@pytest.fixture()
def project(tmp_path):
    """A params file whose data folder is under ``tmp_path`` (code and notebooks: the repository's)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"]["data"] = str(tmp_path / "data")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _edit(path, section: str, key: str, value) -> None:
    params = yaml.safe_load(path.read_text())
    node = params
    for part in section.split("."):
        node = node[part]
    node[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _contents(tmp_path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((tmp_path / "data" / "stages").glob("*.json"))}


def test_first_check_writes_every_stage_then_nothing(project, tmp_path):
    assert write_fingerprints(project, REPO) == {stage: ["new"] for stage in STAGE_NOTEBOOKS}
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "data" / "stages").iterdir()}
    assert write_fingerprints(project, REPO) == {}
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data" / "stages").iterdir()} == before


def test_a_param_change_reaches_only_the_stages_that_read_it(project):
    write_fingerprints(project, REPO)
    _edit(project, "pretrain.optim", "lr", 0.002)
    changed = write_fingerprints(project, REPO)
    assert set(changed) == {"pretrain", "figures"}
    assert changed["pretrain"] == ["pretrain.optim.lr: 0.001 -> 0.002"]
    _edit(project, "evaluate", "seeds", [0, 1])
    assert set(write_fingerprints(project, REPO)) == {"evaluate", "figures"}
    _edit(project, "pretrain.location", "legendre_polys", 20)   # the location tower: also extract's
    assert set(write_fingerprints(project, REPO)) == {"pretrain", "extract", "figures"}


def test_fingerprint_holds_resolved_params_and_code_hashes(project):
    from satclip.config import load_params

    fp = stage_fingerprint(load_params(project), "evaluate", REPO)
    assert fp["params"]["evaluate.seeds"] == [0, 1, 2] and "extract.encoders" in fp["params"]
    assert not [k for k in fp["params"] if k.startswith("pretrain.")]
    assert "notebooks/40_evaluate.ipynb" in fp["code"] and "src/satclip/evaluation/probes.py" in fp["code"]
    assert all(len(h) == 64 for h in fp["code"].values())
    download = stage_fingerprint(load_params(project), "download", REPO)
    assert "src/satclip/evaluation/probes.py" not in download["code"]   # not imported by the download stage


def test_a_code_change_reaches_only_the_stage_that_runs_it(project, tmp_path):
    """A copy of the notebooks with one notebook edited: only that stage's fingerprint changes."""
    root = tmp_path / "root"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    write_fingerprints(project, root)
    notebook = root / notebook_template("tables")
    cells = json.loads(notebook.read_text())
    cells["cells"][-1]["source"] = ["# an edit\n"] + list(cells["cells"][-1]["source"])
    notebook.write_text(json.dumps(cells))
    assert write_fingerprints(project, root) == {"tables": ["notebooks/50_tables.ipynb changed"]}


def test_imports_inside_functions_count():
    source = "def f():\n    from satclip.evaluation import probes\n    return probes\n"
    assert "satclip.evaluation.probes" in imports_of_source(source)
    files = {p.name for p in stage_files("pretrain", REPO / notebook_template("pretrain"))}
    assert {"runner.py", "pretrain.py", "training.py"} <= files


def test_evaluate_runs_no_study_table_or_verdict_code():
    """Tabulating the study (tables, verdict) is the tables stage's: editing it re-runs no probe fit."""
    files = {str(p.relative_to(REPO)) for p in stage_files("evaluate", REPO / notebook_template("evaluate"))}
    assert "src/satclip/evaluation/tidy.py" in files and "src/satclip/evaluation/probes.py" in files
    assert not files & {"src/satclip/evaluation/tables.py", "src/satclip/evaluation/verdict.py"}, files
    tables = {p.name for p in stage_files("tables", REPO / notebook_template("tables"))}
    assert {"tables.py", "verdict.py", "tidy.py"} <= tables


def test_bad_params_write_nothing_and_name_the_key(project, tmp_path, capsys):
    write_fingerprints(project, REPO)
    before = _contents(tmp_path)
    _edit(project, "pretrain.optim", "lr", 0.002)
    with project.open("a") as f:
        f.write("evalute:\n  seeds: [0]\n")
    with pytest.raises(ConfigError, match="evalute"):
        write_fingerprints(project, REPO)
    assert main([str(project)]) == 1
    assert "evalute" in capsys.readouterr().err
    assert _contents(tmp_path) == before


def test_main_says_why_a_stage_re_runs(project, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main([str(project)]) == 0
    _edit(project, "download.labels", "n_points", 100)
    assert main([str(project)]) == 0
    err = capsys.readouterr().err
    assert "check: download will re-run: download.labels.n_points: 20000 -> 100" in err
    assert main([str(project)]) == 0
    assert "no stage's params or code changed" in capsys.readouterr().err
    assert Layout().fingerprint("download").as_posix().endswith("stages/download.json")
