"""Reading finished experiments out of `dvc exp show --json` and tabulating a sweep."""

from __future__ import annotations

import math

import pytest

from satclip.sweeps.compare import comparison_table, finished_experiments, same_configuration
from satclip.sweeps.sweep import Sweep


def _rev(name, stamp, L, r2, error=None, metrics=True):
    data = {"timestamp": stamp, "params": {"params.yaml": {"data": {"pretrain": {"location": {"legendre_polys": L}}}}},
            "metrics": {"results/metrics/downstream.json": {"data": {
                "verdict": {"mlp": {"checkerboard": {"beats_all": 0, "tasks": 1}}},
                "validation_verdict": {"mlp": {"checkerboard": {"beats_all": 1, "tasks": 1}}},
                "validation_margin": {"mlp": {"checkerboard": {"margin": -0.0123, "leads": 0, "tasks": 1,
                                                               "per_task": {"population": -0.0123}}}},
                "population": {"satclip": {"mlp": {"checkerboard": {"r2": r2}}}}}},
                "results/metrics/pretrain.json": {"data": {"val_top1": 0.1, "val_median_km": 900.0}}} if metrics else {}}
    return {"revs": [{"name": name, "error": error, "data": data}]}


SHOW = [
    {"name": "main", "experiments": [_rev("s-a", "2026-11-28T10:00:00", 10, 0.5),
                                     _rev("s-b", "2026-11-28T10:05:00", 20, None, error={"msg": "failed"}),
                                     _rev("s-c", "2026-11-28T10:06:00", 40, 0.7, metrics=False)]},
    {"name": "older", "experiments": [_rev("s-a", "2026-11-27T09:00:00", 10, 0.1)]},
    {"name": "running", "experiments": [{**_rev("s-d", "2026-11-28T10:07:00", 20, 0.6),
                                         "executor": {"state": "running"}}]},
]


def test_finished_experiments_keep_the_newest_and_drop_failed_or_unfinished():
    found = finished_experiments(SHOW)
    assert set(found) == {"s-a"}
    assert found["s-a"]["params"]["pretrain.location.legendre_polys"] == 10
    assert found["s-a"]["metrics"]["downstream.json"]["population"]["satclip"]["mlp"]["checkerboard"]["r2"] == 0.5


def test_comparison_table_in_point_order_with_missing_scores_as_nan():
    sweep = Sweep("s", "L", "pretrain.location.legendre_polys", None,
                  {"a": {"pretrain.location.legendre_polys": 10}, "b": {"pretrain.location.legendre_polys": 20}})
    table = comparison_table(sweep, finished_experiments(SHOW))
    assert list(table["experiment"]) == ["s-a"] and table.loc[0, "population"] == 0.5
    assert "verdict" not in table.columns   # the verdict counts are no task ...
    assert table.loc[0, "wins mlp checkerboard"] == "0/1"   # ... but the verdict's columns
    assert "wins mlp Asia" not in table.columns   # no such cell in that experiment's verdict
    assert "validation_verdict" not in table.columns and table.loc[0, "val wins mlp checkerboard"] == "1/1"
    assert "validation_margin" not in table.columns and table.loc[0, "val margin mlp checkerboard"] == "-1.2 %"
    assert table.loc[0, "pretrain top-1"] == 0.1
    linear = comparison_table(sweep, finished_experiments(SHOW), probe="linear")
    assert math.isnan(linear.loc[0, "population"])
    with pytest.raises(LookupError, match="make sweep NAME=t"):
        comparison_table(Sweep("t", "", None, None, {"x": {"seed": 1}}), finished_experiments(SHOW))


def test_params_and_full_metrics_come_from_the_experiment_commit():
    """`dvc exp show` lists the headline only: params.yaml and downstream.json are read at the commit."""
    files = {("abc", "params.yaml"): "seed: 3\npretrain:\n  location:\n    legendre_polys: 40\n",
             ("abc", "out/metrics/downstream.json"): '{"population": {"satclip": {"mlp": {"checkerboard": {"r2": 0.6}}}}}'}
    show = [{"name": "main", "experiments": [{"revs": [{"name": "s-a", "rev": "abc", "error": None, "data": {
        "timestamp": "2026-12-01T10:00:00", "params": {"params.yaml": {"data": {"seed": 3}}},
        "metrics": {"out/metrics/headline.json": {"data": {"top1": 0.2}}}}}]}]}]
    found = finished_experiments(show, lambda rev, path: files.get((rev, path)), "out/metrics")
    assert found["s-a"]["params"]["pretrain.location.legendre_polys"] == 40
    assert found["s-a"]["metrics"]["downstream.json"]["population"]["satclip"]["mlp"]["checkerboard"]["r2"] == 0.6
    assert finished_experiments(show) == {}   # no downstream scores without the commit's files


def test_a_point_without_its_experiment_uses_one_of_the_same_configuration():
    found = finished_experiments(SHOW)   # s-a: L = 10
    shared = Sweep("u", "", None, None, {"ten": {"pretrain.location.legendre_polys": 10},
                                         "twenty": {"pretrain.location.legendre_polys": 20}})
    table = comparison_table(shared, found, base={"pretrain.location.legendre_polys": 40})
    assert list(table["experiment"]) == ["s-a"] and list(table["point"]) == ["ten"]
    assert same_configuration(found, {"pretrain.location.legendre_polys": 10, "seed": 0}) is None  # key missing
    with pytest.raises(LookupError):   # without base, only experiments named u-<point> count
        comparison_table(shared, found)


def test_publish_copies_the_table_with_its_provenance(tmp_path):
    from satclip.sweeps.compare import publish

    table = tmp_path / "s.md"
    table.write_text("# Sweep s\n\n| point |\n|---|\n| a |\n")
    out = publish(table, tmp_path / "docs" / "s.md", ["s-a", "s-b", "s-a"])
    text = out.read_text()
    assert text.startswith("# Sweep s\n") and "| a |" in text
    assert "from the experiments `s-a`, `s-b` (`dvc exp show`)" in text


def test_the_newest_commit_is_a_candidate_for_a_shared_point():
    """The default point need not run as an experiment: the commit's own metrics are read."""
    files = {("c0ffee1234", "params.yaml"): "pretrain:\n  location:\n    legendre_polys: 10\n",
             ("c0ffee1234", "results/metrics/downstream.json"):
                 '{"population": {"satclip": {"mlp": {"checkerboard": {"r2": 0.4}}}}}'}
    show = [{"rev": "workspace", "data": {"metrics": {"results/metrics/headline.json": {"data": {"top1": 0.9}}}}},
            {"rev": "c0ffee1234", "name": "main", "data": {
                "timestamp": "2026-12-01T10:00:00", "metrics": {"results/metrics/headline.json": {"data": {"top1": 0.3}}}},
             "experiments": [_rev("s-b", "2026-12-01T11:00:00", 20, 0.6)]}]
    found = finished_experiments(show, lambda rev, path: files.get((rev, path)))
    assert set(found) == {"main@c0ffee1", "s-b"}   # the workspace is no candidate: nothing ties it to a commit
    sweep = Sweep("s", "L", "pretrain.location.legendre_polys", None,
                  {"a": {"pretrain.location.legendre_polys": 10}, "b": {"pretrain.location.legendre_polys": 20}})
    table = comparison_table(sweep, found, base={"pretrain.location.legendre_polys": 10})
    assert list(table["experiment"]) == ["main@c0ffee1", "s-b"] and list(table["population"]) == [0.4, 0.6]
    assert set(finished_experiments(show)) == {"s-b"}   # without the commit's files, no candidate


PUBLISHED = """# Sweep s

Two values of L

Scores: satclip embedding, mlp probe, checkerboard split; primary metric (R² or accuracy), mean over seeds.

| point | pretrain.location.legendre_polys | evaluate.mlp.lr | wins mlp checkerboard | population | biomes |
|---|---|---|---|---|---|
| l10 | 10 | [0.01] | 0/7 | 0.615 | n/a |
| l20 | 20 | [0.01, 0.001] | 1/7 | 0.702 | 0.731 |

`make compare` on 2026-12-04 at commit abc1234, from the experiments `s-l10`, `s-l20` (`dvc exp show`).
"""


def test_a_published_table_reads_back_with_numbers_as_numbers():
    from satclip.sweeps.compare import published_table

    table = published_table(PUBLISHED)
    assert list(table["point"]) == ["l10", "l20"]
    assert table["pretrain.location.legendre_polys"].tolist() == [10, 20]
    assert table["population"].tolist() == [0.615, 0.702]
    assert math.isnan(table["biomes"][0]) and table["biomes"][1] == 0.731   # n/a is a missing score
    assert table["evaluate.mlp.lr"].tolist() == ["[0.01]", "[0.01, 0.001]"]   # a grid stays a label
    assert table["wins mlp checkerboard"].tolist() == ["0/7", "1/7"]
    with pytest.raises(ValueError, match="no comparison table"):
        published_table("# Sweep s\n\ntext only\n")


def test_publish_links_the_figure_above_the_provenance(tmp_path):
    from satclip.sweeps.compare import figure_line, publish

    table = tmp_path / "s.md"
    table.write_text("# Sweep s\n\n| point |\n|---|\n| a |\n")
    sweep = Sweep("s", "Two values of L", "pretrain.location.legendre_polys", None, {})
    line = figure_line(sweep, tmp_path / "docs" / "s.png")
    assert line == "![Sweep s: Two values of L](s.png)"
    text = publish(table, tmp_path / "docs" / "s.md", ["s-a"], line).read_text()
    assert text.index("| a |") < text.index(line) < text.index("`make compare` on")


def test_redraw_draws_the_figure_from_the_published_table_and_links_it_once(tmp_path, capsys):
    from satclip.sweeps.compare import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "s.md").write_text(PUBLISHED)
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text('description: "Two values of L"\nx: pretrain.location.legendre_polys\n'
                          "points:\n  l10: {pretrain.location.legendre_polys: 10}\n"
                          "  l20: {pretrain.location.legendre_polys: 20}\n")
    for _ in range(2):   # a second redraw replaces the figure and does not link it twice
        assert main([str(sweep_file), "--publish", str(docs), "--redraw"]) == 0
    png = docs / "s.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (docs / "s.md").read_text()
    assert text.count("](s.png)") == 1
    assert text.index("| l20 |") < text.index("](s.png)") < text.index("`make compare` on")
    assert not list(docs.glob("*.tmp*")) and sorted(p.name for p in docs.iterdir()) == ["s.md", "s.png"]

    (docs / "s.md").unlink()
    png.unlink()
    assert main([str(sweep_file), "--publish", str(docs), "--redraw"]) == 2
    assert "no published comparison of sweep 's'" in capsys.readouterr().err
    assert not png.exists()
    with pytest.raises(SystemExit) as exit_:
        main([str(sweep_file), "--redraw"])
    assert exit_.value.code == 2
