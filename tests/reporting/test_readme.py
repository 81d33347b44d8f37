"""The README's generated blocks: rendered from the tracked metrics, checked against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satclip.reporting.readme import block, main, render_results, replace_block

REPO = Path(__file__).resolve().parents[2]


def _metrics(tmp_path: Path) -> Path:
    d = tmp_path / "metrics"
    d.mkdir()
    (d / "pretrain.json").write_text(json.dumps({
        "runs": 3, "epochs": 25, "train_pairs": 18000, "chance_top1": 0.002, "val_top1": 0.155,
        "val_median_km": 1783.0, "std": {"val_top1": 0.01, "val_median_km": 50.0}}))
    counts = {"win": 2, "tie": 4, "loss": 1, "n/a": 0}
    (d / "downstream.json").write_text(json.dumps({
        "verdict": {"mlp": {"checkerboard": {"vs satclip-random": counts, "vs raw": counts, "beats_all": 2, "tasks": 7},
                            "continent:Asia": {"vs satclip-random": {**counts, "n/a": 1}, "vs raw": counts,
                                               "beats_all": 1, "tasks": 7}}},
        "validation_verdict": {"mlp": {"checkerboard": {"vs raw": counts, "beats_all": 3, "tasks": 7}}},
        "validation_margin": {"mlp": {"checkerboard": {"margin": 0.021, "leads": 5, "tasks": 7, "per_task": {}}}},
        "population": {"satclip": {"mlp": {"checkerboard": {"r2": 0.6}}}, "raw": {"mlp": {"checkerboard": {"r2": 0.5}}}},
        "biomes": {"satclip": {"mlp": {"continent:Asia": {"accuracy": 0.1, "accuracy_seen": 0.4}}},
                   "raw": {"mlp": {"continent:Asia": {"accuracy": 0.1, "accuracy_seen": None}}}},
    }))
    return d


def test_render_results_states_the_verdict_and_tables(tmp_path):
    text = render_results(_metrics(tmp_path))
    assert "3 pretraining runs of 25 epochs" in text and "15.5 ± 1.0 %" in text
    assert "continent:Asia split: `satclip` beats both baselines beyond the paired 95 % interval on **1 of 7**" in text
    assert "1 losses, 1 n/a" in text and "**does not hold**" in text
    assert "| population (R²) | **0.600** |" in text and "validation_verdict" not in text
    assert "On the probes' validation loss (no test point)" in text and "checkerboard 3 of 7 tasks" in text
    assert "checkerboard +2.1 % (lower on 5 of 7 tasks)" in text and "validation_margin" not in text
    assert "| biomes (accuracy, seen classes) | **0.400** |  |  |  | n/a |" in text


def test_blocks_are_replaced_and_checked(tmp_path, monkeypatch):
    metrics = _metrics(tmp_path)
    readme = tmp_path / "README.md"
    start, end = ("<!-- begin generated: {} (python -m satclip.reporting.readme; do not edit) -->",
                  "<!-- end generated: {} -->")
    readme.write_text("# x\n" + "".join(f"{start.format(n)}\nold\n{end.format(n)}\n" for n in ("results", "cost")))
    args = [str(readme), "--results", str(tmp_path), "--data", str(tmp_path / "data")]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert block(readme.read_text(), "results") == render_results(metrics)
    with pytest.raises(ValueError, match="no generated block 'cost'"):
        replace_block("# nothing", "cost", "x")


def test_the_committed_readme_says_what_the_committed_metrics_say():
    text = (REPO / "README.md").read_text()
    assert block(text, "results") == render_results(REPO / "results" / "metrics"), \
        "README.md is stale: run `python -m satclip.reporting.readme` after the run"


def test_the_sweeps_block_shows_every_published_comparison(tmp_path):
    from satclip.reporting.readme import render_sweeps

    assert "No sweep compared yet" in render_sweeps(tmp_path / "none")
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "b.md").write_text("# Sweep b\n\n| point | population |\n|---|---|\n| x | 0.5 |\n")
    (tmp_path / "sweeps" / "a.md").write_text("# Sweep a\n\ntext\n")
    body = render_sweeps(tmp_path / "sweeps")
    assert body.index("**Sweep a**") < body.index("**Sweep b**") and "| x | 0.5 |" in body
    assert "# Sweep" not in body   # no headings inside the README's Results section
    _metrics(tmp_path)
    readme = tmp_path / "README.md"
    start, end = ("<!-- begin generated: {} (python -m satclip.reporting.readme; do not edit) -->",
                  "<!-- end generated: {} -->")
    readme.write_text("".join(f"{start.format(n)}\nold\n{end.format(n)}\n" for n in ("results", "cost", "sweeps")))
    assert main([str(readme), "--results", str(tmp_path), "--data", str(tmp_path / "data"),
                 "--sweeps", str(tmp_path / "sweeps")]) == 0
    assert block(readme.read_text(), "sweeps") == body


def test_a_sweeps_figure_is_linked_from_the_readmes_folder(tmp_path):
    from satclip.reporting.readme import render_sweeps

    sweeps = tmp_path / "docs" / "sweeps"
    sweeps.mkdir(parents=True)
    (sweeps / "a.md").write_text("# Sweep a\n\n| point |\n|---|\n| x |\n\n![Sweep a: L](a.png)\n")
    body = render_sweeps(sweeps)
    assert f"![Sweep a: L]({sweeps.as_posix()}/a.png)" in body
    assert "](a.png)" not in body


def _stage_run(results: Path, stem: str, seconds: float) -> None:
    (results / "notebooks").mkdir(parents=True, exist_ok=True)
    (results / "notebooks" / f"{stem}.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))


def test_the_cost_block_says_when_pretraining_was_reused(tmp_path):
    from satclip.reporting.readme import render_cost

    results, data = tmp_path / "results", tmp_path / "data"
    _stage_run(results, "20_pretrain", 30.0)
    _stage_run(results, "40_evaluate_population", 90.0)
    (results / "plots").mkdir()
    # two runs side by side: 3 epochs of 200 s and of 100 s -> the longest run trained 10 minutes
    (results / "plots" / "pretrain_history.csv").write_text(
        "run,epoch,epoch_seconds\n" + "".join(f"{r},{e},{200 if r == 0 else 100}\n" for r in (0, 1) for e in range(3)))
    text = render_cost(results, data)
    assert "took 2 minutes in all" in text and "reused 2 finished pretraining runs" in text, text
    assert "training took 10 minutes more" in text, text
    _stage_run(results, "20_pretrain", 660.0)   # a run that trained: its own time, no note
    text = render_cost(results, data)
    assert "took 12 minutes in all" in text and "reused" not in text, text
