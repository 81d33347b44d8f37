"""dvc.yaml cannot drift: stage deps match the import closure, paths match ``satclip.paths``."""

from __future__ import annotations

import re

import pytest
import yaml

from imports import REPO, compact_deps, files_of, stage_modules
from satclip.config import Params, load_params
from satclip.paths import STAGE_NOTEBOOKS, Layout, notebook_template

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


@pytest.mark.parametrize("stage", ["check", *STAGE_NOTEBOOKS])
def test_src_deps_are_exactly_the_import_closure(stage):
    """A module a stage's notebook imports (transitively) is a dep; nothing else under src/ is."""
    notebook = REPO / notebook_template(stage) if stage != "check" else None
    expected = compact_deps(files_of(stage_modules(stage, notebook)))
    listed = sorted(d for d in _paths(_stage(stage)["deps"]) if d.startswith("src/"))
    assert listed == expected, (f"dvc.yaml stage {stage!r}: its src deps are not its imports; run "
                                f"`.venv/bin/python tests/imports.py` to rewrite them. Expected:\n"
                                + "\n".join(f"      - {d}" for d in expected))


@pytest.mark.parametrize("stage", list(STAGE_NOTEBOOKS))
def test_every_stage_runs_its_notebook_after_the_params_check(stage):
    spec = _stage(stage)
    assert re.fullmatch(rf"python -m satclip\.stages\.runner {stage}( --task \$\{{item\}})?", spec["cmd"])
    deps = _paths(spec["deps"])
    assert notebook_template(stage).as_posix() in deps
    assert Layout().params_stamp.as_posix() in deps


def test_check_stage_tracks_every_param_and_writes_the_stamp():
    check = DVC["check"]
    assert check["params"] == [{"params.yaml": None}]
    assert _paths(check["outs"]) == [Layout().params_stamp.as_posix()]


def test_outputs_are_the_layout_paths():
    layout = Layout()
    tasks = Params().download.labels.tasks
    outs = {name: set(_paths(_stage(name).get("outs", []) + _stage(name).get("metrics", []))) for name in DVC}
    item = "${item}"
    expected = {
        "download": {layout.raw, layout.labels, layout.pretrain_sets, layout.metrics("download")},
        "pretrain": {layout.pretrain_runs, layout.model_dir, layout.history, layout.metrics("pretrain")},
        "extract": {layout.embeddings, layout.metrics("extract")},
        "evaluate": {layout.task_table(item), layout.task_scores(item), layout.predictions(item),
                     layout.task_figures / f"{item}_bars.png", layout.task_figures / f"{item}_bars.pdf"},
        "tables": {layout.downstream_csv, layout.tables / "downstream.md", layout.tables / "downstream.tex",
                   layout.localization_map.with_suffix(".png"), layout.localization_map.with_suffix(".pdf"),
                   layout.metrics("downstream"), layout.scores_csv, layout.verdict_csv,
                   layout.tables / "verdict.md"},
        "figures": {layout.summary_figures, layout.index_html, layout.readme, layout.readme_html},
    }
    for stage, paths in expected.items():
        task = item if stage == "evaluate" else None
        report = layout.report(stage, task)
        paths = {p.as_posix() for p in paths} | {report.as_posix(), report.with_suffix(".html").as_posix()}
        assert outs[stage] == paths, stage
    assert tasks  # the evaluate stage's foreach runs over download.labels.tasks
    assert DVC["evaluate"]["foreach"] == "${download.labels.tasks}"
