"""The results table: CSV order, Markdown / LaTeX layout, bold best, escapes, metrics JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from satclip.evaluation.run import RESULT_COLUMNS
from satclip.evaluation.tables import (
    latex_escape,
    latex_table,
    latex_tables,
    markdown_table,
    markdown_tables,
    metrics_json,
    write_metrics_json,
)
from satclip.evaluation.tidy import sort_results, write_downstream_csv

METRICS = {"population": ["r2", "mse", "mae"], "biomes": ["accuracy", "macro_f1"],
           "air_temperature": ["r2", "mse", "mae"]}
# mean of the primary metric per (task, encoder); geoclip is unavailable
PRIMARY = {("population", "satclip"): 0.71, ("population", "raw"): 0.55,
           ("biomes", "satclip"): 0.80, ("biomes", "raw"): 0.83,
           ("air_temperature", "satclip"): 0.9, ("air_temperature", "raw"): 0.9}


def results() -> pd.DataFrame:
    rows = []
    for task, metrics in METRICS.items():
        for enc in ("raw", "geoclip", "satclip"):
            for probe in ("linear", "mlp"):
                for split in ("continent:Asia", "checkerboard", "random"):
                    for m in metrics:
                        missing = enc == "geoclip"
                        mean = np.nan if missing else PRIMARY[(task, enc)] + (0.1 if m != METRICS[task][0] else 0)
                        rows.append({"task": task, "encoder": enc, "probe": probe, "split": split, "metric": m,
                                     "mean": mean, "std": np.nan if missing else 0.01, "n_seeds": 0 if missing else 3,
                                     "n_train": 100, "n_test": 100,
                                     "note": "unavailable: no network" if missing else ""})
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # shuffled


def test_csv_rows_are_in_the_canonical_order_and_deterministic(tmp_path):
    df = results()
    path = write_downstream_csv(df, tmp_path / "tables" / "downstream.csv")
    again = write_downstream_csv(df.sample(frac=1.0, random_state=1), tmp_path / "again.csv")
    assert path.read_bytes() == again.read_bytes()
    assert not list((tmp_path / "tables").glob(".*tmp"))  # written atomically, no leftovers
    out = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert list(out.columns) == RESULT_COLUMNS
    assert list(dict.fromkeys(out["task"])) == ["population", "biomes", "air_temperature"]  # headline first
    first = out[out["task"] == "population"]
    assert list(dict.fromkeys(first["encoder"])) == ["satclip", "raw", "geoclip"]
    assert list(dict.fromkeys(first["probe"])) == ["mlp", "linear"]
    assert list(dict.fromkeys(first["split"])) == ["random", "checkerboard", "continent:Asia"]
    assert list(first["metric"][:3]) == ["r2", "mse", "mae"]
    assert sort_results(df).equals(sort_results(sort_results(df)))


def test_markdown_table_layout_and_bold_best():
    text = markdown_table(results(), "mlp", "checkerboard")
    lines = text.splitlines()
    assert lines[0] == "| task | satclip | raw | geoclip |"
    assert lines[2].startswith("| population (R²) | **0.710 ± 0.010** | 0.550 ± 0.010 | n/a |")
    assert lines[3].startswith("| biomes (accuracy) | 0.800 ± 0.010 | **0.830 ± 0.010** |")
    assert lines[4].count("**") == 4  # a tie: both bold
    assert "n/a: geoclip: unavailable: no network (population, biomes, air_temperature)" in text


def test_lower_is_better_metrics_bold_the_minimum():
    df = results()
    text = markdown_table(df, "mlp", "random", primary={"regression": "mse", "classification": "accuracy"})
    row = next(line for line in text.splitlines() if line.startswith("| population"))
    assert "(MSE)" in row and "**0.650 ± 0.010**" in row and "**0.810" not in row


def test_markdown_tables_one_per_probe_and_split():
    text = markdown_tables(results())
    heads = [line for line in text.splitlines() if line.startswith("### ")]
    assert heads == ["### mlp probe, random split", "### mlp probe, checkerboard split",
                     "### mlp probe, continent:Asia split", "### linear probe, random split",
                     "### linear probe, checkerboard split", "### linear probe, continent:Asia split"]
    assert "over 3 seeds" in text


def test_latex_escapes_bold_and_structure():
    assert latex_escape("air_temperature & 50% #1 {x} ~ ^ \\") == (
        r"air\_temperature \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}")
    tex = latex_table(results(), "mlp", "continent:Asia")
    assert r"\label{tab:downstream-mlp-continent-asia}" in tex
    assert r"air\_temperature (R$^2$)" in tex and "air_temperature" not in tex.replace(r"air\_temperature", "")
    assert r"\textbf{0.710 $\pm$ 0.010}" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex and tex.count(r"\\") >= 4
    assert tex.count("&") == 4 * 3  # header + 3 task rows, 3 separators each
    assert latex_tables(results()).count(r"\begin{table}") == 6


def test_metrics_json_is_nested_and_valid_json(tmp_path):
    m = metrics_json(results())
    assert list(m) == ["population", "biomes", "air_temperature"]
    assert m["population"]["satclip"]["mlp"]["random"]["r2"] == 0.71
    assert m["biomes"]["geoclip"]["linear"]["checkerboard"]["accuracy"] is None
    path = write_metrics_json(results(), tmp_path / "metrics" / "downstream.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(m, allow_nan=False))


def test_large_values_get_fewer_decimals():
    df = results()
    df.loc[(df["task"] == "population") & (df["metric"] == "mae"), "mean"] = 45123.456
    text = markdown_table(df, "mlp", "random", primary={"regression": "mae", "classification": "accuracy"})
    assert "45123 ± 0" in text


def test_write_tables_adds_the_validation_verdict_without_probes_that_have_no_val_loss(tmp_path):
    from satclip.evaluation.tables import VALIDATION_MARGIN, VALIDATION_VERDICT, VERDICT, write_tables
    from satclip.paths import Layout

    res = results()
    res = res[res["encoder"] != "geoclip"]
    res = pd.concat([res, res[res["encoder"] == "raw"].assign(encoder="satclip-random")], ignore_index=True)
    scores = []
    for task, metrics in METRICS.items():
        for enc, shift in (("satclip", 0.0), ("satclip-random", 0.2), ("raw", 0.3)):
            for probe in ("linear", "mlp"):
                for seed in range(3):
                    scores.append({"task": task, "encoder": enc, "probe": probe, "split": "checkerboard",
                                   "seed": seed, "run": seed, "metric": metrics[0], "value": 0.5 - shift + 0.01 * seed})
                    if probe == "mlp":   # only the mlp probe has a validation loss; satclip's is lowest
                        scores.append({"task": task, "encoder": enc, "probe": probe, "split": "checkerboard",
                                       "seed": seed, "run": seed, "metric": "val_loss", "value": 0.1 + shift + 0.001 * seed})
    layout = Layout(tmp_path / "data", tmp_path / "results")
    write_tables(res, layout, pd.DataFrame(scores))
    data = json.loads(layout.metrics("downstream").read_text())
    assert list(data)[:2] == [VERDICT, VALIDATION_VERDICT]   # the counts first, then the tasks
    assert set(data[VALIDATION_VERDICT]) == {"mlp"}          # linear (no val loss) is left out
    assert data[VALIDATION_VERDICT]["mlp"]["checkerboard"]["beats_all"] == 3
    assert data[VERDICT]["linear"]["checkerboard"]["beats_all"] == 3
    margin = data[VALIDATION_MARGIN]["mlp"]["checkerboard"]   # (0.301 - 0.101) / 0.301 on every task
    assert set(data[VALIDATION_MARGIN]) == {"mlp"} and margin["leads"] == margin["tasks"] == 3
    assert margin["margin"] == pytest.approx(0.2 / 0.301, abs=1e-5)
