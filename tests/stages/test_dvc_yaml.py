"""dvc.yaml cannot drift: each stage depends on its fingerprint, paths match ``satclip.paths``."""

from __future__ import annotations

import re

import pytest
import yaml

from imports import REPO
from satclip.config import Params, load_params
from satclip.evaluation.headline import HEADLINE_TASKS, PRETRAIN_KEYS, WIN_PROTOCOLS
from satclip.paths import STAGE_NOTEBOOKS, Layout
from satclip.stages.check import HEADLINE_PARAMS

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _stage(name: str) -> dict:
    stage = DVC[name]
    return stage["do"] if "foreach" in stage else stage


def _paths(entries: list) -> list[str]:
    """The path of each deps/outs entry (a string or a one-key mapping), ``${paths.*}`` resolved."""
    params = load_params(REPO / "params.yaml")
    out = []
    for entry in entries:
        path = entry if isinstance(entry, str) else next(iter(entry))
        out.append(path.replace("${paths.data}", params.paths.data).replace("${paths.results}", params.paths.results))
    return out


@pytest.mark.parametrize("stage", list(STAGE_NOTEBOOKS))
def test_every_stage_runs_its_notebook_after_the_check_through_its_fingerprint(stage):
    """Params and code reach a stage through its fingerprint: no src/ or notebook dep, no params but the headline."""
    spec = _stage(stage)
    assert re.fullmatch(rf"python -m satclip\.stages\.runner {stage}( --task \$\{{item\}})?", spec["cmd"])
    deps = _paths(spec["deps"])
    assert deps[0] == Layout().fingerprint(stage).as_posix()
    assert not [d for d in deps if d.startswith(("src/", "notebooks/"))], deps
    assert [str(p) for p in spec.get("params", [])] == (list(HEADLINE_PARAMS) if stage == "tables" else [])


def test_check_stage_always_runs_and_writes_the_fingerprints():
    check = DVC["check"]
    assert check["cmd"] == "python -m satclip.stages.check params.yaml"
    assert check["always_changed"] is True and "deps" not in check and "params" not in check
    assert _paths(check["outs"]) == [Layout().fingerprints.as_posix()]
    assert check["outs"][0][next(iter(check["outs"][0]))] == {"cache": False, "persist": True}


def test_the_headline_is_the_only_declared_metrics_file():
    """`dvc exp show` lists the headline metrics only; the other metrics files are plain outputs."""
    declared = {name: _paths(_stage(name)["metrics"]) for name in DVC if "metrics" in _stage(name)}
    assert declared == {"tables": [Layout().metrics("headline").as_posix()]}


def test_headline_params_cover_every_swept_key():
    """The params columns of `dvc exp show` include every key a sweep in experiments/sweeps varies."""
    swept = set()
    for path in sorted((REPO / "experiments" / "sweeps").glob("*.yaml")):
        for point in yaml.safe_load(path.read_text())["points"].values():
            swept |= set(point)
    assert swept <= set(HEADLINE_PARAMS), swept - set(HEADLINE_PARAMS)


def test_exp_show_param_deps_has_at_most_35_columns():
    """Experiment and Created, every headline metric a run can write, the headline params: <= 35.

    (30 until the probe sweep added the MLP grid's learning rate and width, 35 with the context
    sweep's patch and crop and the probe's weight decay; `satclip exp` shows only the params that
    differ, so its table stays narrow.)
    """
    metrics = (len(PRETRAIN_KEYS) + len(WIN_PROTOCOLS) + 1 + HEADLINE_TASKS)  # + mlp_cb_val
    assert 2 + metrics + len(HEADLINE_PARAMS) <= 35, (metrics, len(HEADLINE_PARAMS))


def test_outputs_are_the_layout_paths():
    layout = Layout()
    tasks = Params().download.labels.tasks
    outs = {name: set(_paths(_stage(name).get("outs", []) + _stage(name).get("metrics", []))) for name in DVC}
    item = "${item}"
    expected = {
        "check": {layout.fingerprints},
        "download": {layout.labels, layout.pretrain_sets, layout.metrics("download")},
        "pretrain": {layout.pretrain_runs, layout.model_dir, layout.history, layout.metrics("pretrain")},
        "extract": {layout.embeddings, layout.metrics("extract")},
        "evaluate": {layout.task_table(item), layout.task_scores(item), layout.predictions(item),
                     layout.task_figures / f"{item}_bars.png", layout.task_figures / f"{item}_bars.pdf"},
        "tables": {layout.downstream_csv, layout.tables / "downstream.md", layout.tables / "downstream.tex",
                   layout.localization_map.with_suffix(".png"), layout.localization_map.with_suffix(".pdf"),
                   layout.metrics("downstream"), layout.metrics("headline"), layout.scores_csv, layout.verdict_csv,
                   layout.tables / "verdict.md"},
        "figures": {layout.summary_figures, layout.index_html, layout.readme, layout.readme_html},
    }
    assert outs.pop("check") == {layout.fingerprints.as_posix()}
    expected.pop("check")
    for stage, paths in expected.items():
        task = item if stage == "evaluate" else None
        report = layout.report(stage, task)
        paths = {p.as_posix() for p in paths} | {report.as_posix(), report.with_suffix(".html").as_posix()}
        assert outs[stage] == paths, stage
    assert tasks  # the evaluate stage's foreach runs over download.labels.tasks
    assert DVC["evaluate"]["foreach"] == "${download.labels.tasks}"


def test_every_metrics_file_is_tracked_by_git():
    """Experiments start from git: an untracked metrics file would be missing there (and re-run its stage)."""
    import subprocess

    layout = Layout()
    tracked = set(subprocess.run(["git", "ls-files", layout.metrics_dir.as_posix()], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout.split())
    for name in ("download", "pretrain", "extract", "downstream", "headline"):
        assert layout.metrics(name).as_posix() in tracked, name
