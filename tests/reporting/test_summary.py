"""Cross-task figure functions on small synthetic tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from satclip.reporting import summary as figures


def _results() -> pd.DataFrame:
    rows = []
    for task, metric in (("population", "r2"), ("biomes", "accuracy")):
        for e, encoder in enumerate(("satclip", "raw")):
            for probe in ("mlp", "linear"):
                for split in ("random", "checkerboard"):
                    rows.append({"task": task, "encoder": encoder, "probe": probe, "split": split, "metric": metric,
                                 "mean": 0.5 + 0.1 * e, "std": 0.01, "n_seeds": 3})
    return pd.DataFrame(rows)


def test_task_panels_one_row_per_task_one_column_per_split():
    fig = figures.task_panels(_results(), ["population", "biomes", "not_run"], caption="c")
    axes = fig.axes
    assert len(axes) == 4 and axes[0].get_title() == "population: random split"
    assert axes[0].get_ylabel() == "R$^2$" and axes[2].get_ylabel() == "top-1 accuracy"
    with pytest.raises(ValueError, match="none of the requested tasks"):
        figures.task_panels(_results(), ["elevation"])


def test_heatmap_marks_the_best_encoder_per_task_and_tolerates_missing_cells():
    res = _results()
    res.loc[(res["task"] == "biomes") & (res["encoder"] == "satclip"), "mean"] = np.nan
    fig = figures.score_heatmap(res, probe="mlp", split="checkerboard")
    texts = [t for t in fig.axes[0].texts]
    bold = [t.get_text() for t in texts if t.get_fontweight() == "bold"]
    assert bold == ["0.60 ± 0.01", "0.60 ± 0.01"] and "n/a" in [t.get_text() for t in texts]
    with pytest.raises(ValueError, match="no results for probe 'xgboost'"):
        figures.score_heatmap(res, probe="xgboost", split="random")


def test_heatmap_colours_scores_on_one_scale_not_per_row():
    """0.50 is one colour in every row; a row of close scores is not stretched into worst-to-best."""
    res = _results()
    res.loc[res["task"] == "biomes", "mean"] = res.loc[res["task"] == "biomes", "mean"] + 0.3   # 0.8 / 0.9
    fig = figures.score_heatmap(res, probe="mlp", split="checkerboard")
    shade = fig.axes[0].images[0].get_array()
    assert shade[0, 0] == pytest.approx(0.5) and shade[0, 1] == pytest.approx(0.6)   # population: 0.5 / 0.6
    assert shade[1, 0] == pytest.approx(0.8) and shade[1, 1] == pytest.approx(0.9)   # biomes: 0.8 / 0.9


def test_run_caption_counts_seeds_of_evaluated_cells_only():
    from imports import REPO
    from satclip.config import load_params

    res = _results().assign(n_seeds=3)
    res.loc[0, ["mean", "n_seeds"]] = [np.nan, 0]   # an n/a cell (no fit) has no seed
    caption = figures.run_caption(load_params(REPO / "params.yaml"), res)
    assert "over 3 seeds" in caption and "0/3" not in caption


def test_comparison_chart_numeric_and_categorical_x():
    table = pd.DataFrame({"point": ["l10", "l40"], "pretrain.location.legendre_polys": [40, 10],
                          "population": [0.6, 0.5], "biomes": [0.8, 0.7]})
    fig = figures.comparison_chart(table, x="pretrain.location.legendre_polys", tasks=["population", "biomes"])
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [10, 40] and list(line.get_ydata()) == [0.5, 0.6]  # sorted by x
    fig = figures.comparison_chart(table, x="point", tasks=["population"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["l10", "l40"]
    with pytest.raises(ValueError, match="no task columns"):
        figures.comparison_chart(table, x="point", tasks=["elevation"])


def test_comparison_chart_with_an_unset_param_labels_it_null():
    """A point that leaves the swept param null (learned temperature) is a category, not a NaN on an axis."""
    table = pd.DataFrame({"point": ["learned", "tau01"], "pretrain.logit_scale_max": [float("nan"), 2.302585],
                          "population": [0.61, 0.60]})
    fig = figures.comparison_chart(table, x="pretrain.logit_scale_max", tasks=["population"])
    fig.canvas.draw()   # the tick formatter failed on the NaN here
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["null", "2.302585"]
