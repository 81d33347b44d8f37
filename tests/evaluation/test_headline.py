"""The headline metrics: a handful of flat numbers from the tables, the verdict and pretraining."""

from __future__ import annotations

import math

import pandas as pd

from satclip.evaluation.headline import headline_metrics


def _results(rows):
    return pd.DataFrame(rows, columns=["task", "encoder", "probe", "split", "metric", "mean"])


def _verdict(rows):
    return pd.DataFrame(rows, columns=["task", "probe", "split", "baseline", "outcome"])


def test_headline_counts_wins_against_every_baseline_and_reads_the_headline_tasks():
    results = _results([
        ("population", "satclip", "mlp", "checkerboard", "r2", 0.61234567),
        ("population", "satclip", "mlp", "checkerboard", "mse", 0.3),
        ("biomes", "satclip", "mlp", "checkerboard", "accuracy", 0.7),
        ("biomes", "raw", "mlp", "checkerboard", "accuracy", 0.9),
        ("elevation", "satclip", "mlp", "checkerboard", "r2", 0.5),
    ])
    verdict = _verdict([
        ("population", "mlp", "checkerboard", "satclip-random", "win"), ("population", "mlp", "checkerboard", "raw", "win"),
        ("biomes", "mlp", "checkerboard", "satclip-random", "win"), ("biomes", "mlp", "checkerboard", "raw", "tie"),
        ("population", "mlp", "continent:Asia", "raw", "loss"),
    ])
    validation = {"mlp": {"checkerboard": {"beats_all": 2, "tasks": 3}}}
    out = headline_metrics(results, verdict, ["population", "biomes", "elevation"],
                           {"val_top1": 0.163, "val_median_km": 1431.26, "std": {}}, validation)
    assert out == {"top1": 0.163, "median_km": 1431.26, "mlp_cb": 1, "mlp_asia": 0,
                   "mlp_cb_val": 2, "population": 0.6123, "biomes": 0.7}
    assert all(isinstance(v, (int, float)) and not math.isnan(v) for v in out.values())


def test_missing_values_are_left_out_not_nan():
    results = _results([("population", "satclip", "mlp", "checkerboard", "r2", float("nan"))])
    assert headline_metrics(results, _verdict([]), ["population"], None) == {}
