"""The paired verdict: differences over seeds and runs, Student-t intervals, n/a cells, counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from satclip.evaluation.verdict import (
    beats_all,
    counts_sentence,
    outcome,
    paired_interval,
    paired_verdict,
    verdict_counts,
    verdict_markdown,
    verdict_sentence,
)


def test_paired_interval_is_the_student_t_interval():
    d = np.array([0.02, 0.05, 0.03])
    mean, lo, hi = paired_interval(d)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert mean == pytest.approx(d.mean()) and lo == pytest.approx(d.mean() - half) and hi == pytest.approx(d.mean() + half)
    assert math.isnan(paired_interval(np.array([0.1]))[1])


def test_outcomes():
    assert outcome(0.01, 0.2) == "win" and outcome(-0.2, -0.01) == "loss" and outcome(-0.1, 0.1) == "tie"
    assert outcome(0.01, 0.2, lower_is_better=True) == "loss"
    assert outcome(math.nan, math.nan) == "n/a"


def _frames():
    scores, results = [], []
    cases = {  # task -> (satclip, satclip-random, raw) per seed
        "population": ([0.80, 0.81, 0.82], [0.70, 0.72, 0.71], [0.50, 0.52, 0.49]),   # wins twice
        "elevation": ([0.60, 0.65, 0.62], [0.61, 0.60, 0.66], [0.40, 0.41, 0.42]),     # tie, win
        "biomes": ([0.50, 0.51, 0.52], [0.60, 0.61, 0.62], [0.55, 0.56, 0.57]),        # two losses
    }
    for task, per_encoder in cases.items():
        metric = "accuracy" if task == "biomes" else "r2"
        for enc, values in zip(("satclip", "satclip-random", "raw"), per_encoder, strict=True):
            for seed, v in enumerate(values):
                scores.append({"task": task, "encoder": enc, "probe": "mlp", "split": "checkerboard",
                               "seed": seed, "run": seed, "metric": metric, "value": v})
            results.append({"task": task, "encoder": enc, "probe": "mlp", "split": "checkerboard",
                            "metric": metric, "mean": np.mean(values), "note": ""})
    for enc in ("satclip", "satclip-random", "raw"):  # a cell without any score
        results.append({"task": "california_housing", "encoder": enc, "probe": "mlp", "split": "checkerboard",
                        "metric": "r2", "mean": np.nan, "note": "no test points on Asia"})
    return pd.DataFrame(scores), pd.DataFrame(results)


def test_paired_verdict_counts_and_renders():
    scores, results = _frames()
    v = paired_verdict(scores, results).set_index(["task", "baseline"])
    assert v.loc[("population", "satclip-random"), "outcome"] == "win"
    assert v.loc[("population", "raw"), "outcome"] == "win"
    assert v.loc[("elevation", "satclip-random"), "outcome"] == "tie"
    assert v.loc[("elevation", "raw"), "outcome"] == "win"
    assert v.loc[("biomes", "raw"), "outcome"] == "loss"
    na = v.loc[("california_housing", "raw")]
    assert na["outcome"] == "n/a" and na["n"] == 0 and na["note"] == "no test points on Asia"
    assert v.loc[("population", "raw"), "mean_diff"] == pytest.approx(np.mean([0.30, 0.29, 0.33]))
    verdict = v.reset_index()
    counts = verdict_counts(verdict)["mlp"]["checkerboard"]
    assert counts["vs satclip-random"] == {"win": 1, "tie": 1, "loss": 1, "n/a": 1}
    assert counts["vs raw"] == {"win": 2, "tie": 0, "loss": 1, "n/a": 1}
    assert counts["beats_all"] == 1 and counts["tasks"] == 4
    assert beats_all(verdict, "mlp", "checkerboard") == ["population"]
    sentence = verdict_sentence(verdict, "mlp", "checkerboard")
    assert "on 1 of 4 tasks (population)" in sentence and "against raw 2 wins, 0 ties, 1 losses, 1 n/a" in sentence
    table = verdict_markdown(verdict, "mlp", "checkerboard")
    assert "| population | r2 | 3 |" in table and "**win**" in table and "n/a: california_housing" in table


def test_validation_verdict_compares_the_val_loss_lower_is_better():
    scores, results = _frames()
    # val losses: satclip lowest on population (a win on validation), highest on elevation
    val = {"population": ([0.20, 0.21, 0.22], [0.40, 0.41, 0.43], [0.50, 0.52, 0.51]),
           "elevation": ([0.60, 0.62, 0.61], [0.30, 0.31, 0.30], [0.50, 0.51, 0.49])}
    rows = [{"task": task, "encoder": enc, "probe": "mlp", "split": "checkerboard", "seed": seed, "run": seed,
             "metric": "val_loss", "value": v}
            for task, per_encoder in val.items()
            for enc, values in zip(("satclip", "satclip-random", "raw"), per_encoder, strict=True)
            for seed, v in enumerate(values)]
    scores = pd.concat([scores, pd.DataFrame(rows)], ignore_index=True)
    # the test verdict ignores the val rows
    pd.testing.assert_frame_equal(paired_verdict(scores, results), paired_verdict(_frames()[0], results))
    v = paired_verdict(scores, results, metric="val_loss").set_index(["task", "baseline"])
    assert set(v["metric"]) == {"val_loss"}
    assert v.loc[("population", "satclip-random"), "outcome"] == "win"    # lower loss wins
    assert v.loc[("elevation", "satclip-random"), "outcome"] == "loss"
    assert v.loc[("biomes", "raw"), "outcome"] == "n/a"                   # no val loss recorded
    counts = verdict_counts(v.reset_index())
    assert counts["mlp"]["checkerboard"]["beats_all"] == 1
    assert counts_sentence(counts) == ("On the probes' validation loss (no test point), `satclip` beats every "
                                       "baseline beyond the paired 95 % interval with the mlp probe on: "
                                       "checkerboard 1 of 4 tasks.")
    assert counts_sentence({}) == "No mlp probe result has a validation loss."


def test_validation_margin_is_the_relative_gap_to_the_best_baseline():
    from satclip.evaluation.verdict import margin_sentence, validation_margin

    # population: satclip 0.2 vs best baseline 0.4 (+50 %); elevation: 0.6 vs 0.3 (-100 %);
    # biomes: raw has no val loss, so no margin; geoclip is no verdict baseline and is ignored
    val = {"population": {"satclip": 0.2, "satclip-random": 0.4, "raw": 0.5, "geoclip": 0.01},
           "elevation": {"satclip": 0.6, "satclip-random": 0.3, "raw": 0.5},
           "biomes": {"satclip": 0.1, "satclip-random": 0.3}}
    rows = [{"task": task, "encoder": enc, "probe": "mlp", "split": "checkerboard", "seed": seed, "run": seed,
             "metric": "val_loss", "value": v + 0.01 * (seed - 1)}
            for task, per_encoder in val.items() for enc, v in per_encoder.items() for seed in range(3)]
    rows.append({**rows[0], "metric": "r2", "value": 0.9})   # not a validation loss
    margin = validation_margin(pd.DataFrame(rows))
    leaf = margin["mlp"]["checkerboard"]
    assert leaf["per_task"] == {"population": pytest.approx(0.5), "elevation": pytest.approx(-1.0)}
    # ratios 0.5 and 2: geometric mean 1, no margin (an arithmetic mean of margins would say -25 %)
    assert leaf["margin"] == pytest.approx(0.0) and leaf["leads"] == 1 and leaf["tasks"] == 2
    assert list(leaf) == ["margin", "leads", "tasks", "per_task"]
    assert validation_margin(pd.DataFrame(rows).assign(metric="r2")) == {}
    assert margin_sentence(margin) == ("`satclip`'s mlp validation loss relative to the best baseline's, geometric "
                                       "mean over tasks (+: that much lower): checkerboard +0.0 % (lower on 1 of 2 "
                                       "tasks).")
    assert margin_sentence({}) == "No mlp probe result has a validation loss."
