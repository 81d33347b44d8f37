"""The study's tables from the tidy results: Markdown, LaTeX, metrics JSON and the verdict.

Rows are ``RESULT_COLUMNS`` of ``satclip.evaluation.run`` in the canonical order of
``satclip.evaluation.tidy`` (which also writes the per-task files of the evaluate stage). The
rendered tables follow the paper's layout: tasks as rows, encoders as columns, one table per
probe and split, "mean ± std" cells with the best per row in bold.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from satclip.evaluation.metrics import LOWER_IS_BETTER, PRIMARY_METRIC, VAL_LOSS, primary_metric
from satclip.evaluation.tidy import (
    PROBE_ORDER,
    ordered,
    rank,
    sort_results,
    split_rank,
    write_downstream_csv,
    write_scores_csv,
)
from satclip.evaluation.verdict import (
    PROTOCOLS,
    paired_verdict,
    validation_margin,
    verdict_counts,
    verdict_markdown,
    verdict_sentence,
)
from satclip.io import write_text
from satclip.paths import Layout

METRIC_LABEL = {"r2": "R²", "mse": "MSE", "mae": "MAE", "accuracy": "accuracy", "macro_f1": "macro-F1",
                "accuracy_seen": "accuracy, seen classes"}
METRIC_LATEX = {"r2": "R$^2$", "mse": "MSE", "mae": "MAE", "accuracy": "accuracy", "macro_f1": "macro-F1",
                "accuracy_seen": "accuracy, seen classes"}
MISSING = "n/a"
# downstream.json keys that are verdict counts, not tasks (on the test split, on validation)
VERDICT = "verdict"
VALIDATION_VERDICT = "validation_verdict"
VALIDATION_MARGIN = "validation_margin"   # verdict.validation_margin: a continuous validation score
VERDICT_KEYS = (VERDICT, VALIDATION_VERDICT, VALIDATION_MARGIN)


def metrics_json(df: pd.DataFrame) -> dict:
    """Nested ``task -> encoder -> probe -> split -> metric -> mean`` (NaN as null) for DVC."""
    out: dict = {}
    for row in sort_results(df).itertuples(index=False):
        mean = float(row.mean)
        leaf = out.setdefault(row.task, {}).setdefault(row.encoder, {}).setdefault(row.probe, {})
        leaf.setdefault(row.split, {})[row.metric] = None if math.isnan(mean) else mean
    return out


def write_metrics_json(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``metrics_json(df)`` to ``path`` atomically."""
    return write_text(path, json.dumps(metrics_json(df), indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Paper-layout tables
# --------------------------------------------------------------------------------------------

def _primary(task_rows: pd.DataFrame, primary: Mapping[str, str]) -> str | None:
    """The metric shown for one task: the regression or classification primary metric present."""
    present = set(task_rows["metric"])
    for kind in ("regression", "classification"):
        if primary[kind] in present:
            return primary[kind]
    return None


def _digits(values: np.ndarray) -> int:
    """Decimals for one row: 3 for scores around 1, fewer for large values (e.g. MAE in USD)."""
    finite = np.abs(values[np.isfinite(values)])
    big = finite.max() if len(finite) else 0.0
    return 3 if big < 10 else 1 if big < 1000 else 0


def _cells(df: pd.DataFrame, probe: str, split: str, primary: Mapping[str, str]):
    """Rows (task, metric, {encoder: (mean, std, bold)}) and the encoders, for one table."""
    sub = df[(df["probe"] == probe) & (df["split"] == split)]
    encoders = ordered("encoder", df["encoder"])
    body = []
    for task in ordered("task", sub["task"]):
        rows = sub[sub["task"] == task]
        metric = _primary(rows, primary)
        if metric is None:
            continue
        if metric == primary["classification"] and "accuracy_seen" in set(rows["metric"]):
            metric = primary_metric("classification", split)  # a held-out continent: seen classes
        rows = rows[rows["metric"] == metric].set_index("encoder")
        means = np.array([rows["mean"].get(e, np.nan) for e in encoders], dtype=np.float64)
        digits = _digits(means)
        shown = np.round(means, digits)
        best = None
        if np.isfinite(shown).any():
            best = np.nanmin(shown) if metric in LOWER_IS_BETTER else np.nanmax(shown)
        cells = {}
        for e, m, s in zip(encoders, means, shown, strict=True):
            std = float(rows["std"].get(e, np.nan)) if e in rows.index else np.nan
            note = str(rows["note"].get(e, "")) if e in rows.index and "note" in rows else ""
            cells[e] = (m, std, best is not None and s == best, note if note != "nan" else "")
        body.append((task, metric, digits, cells))
    return body, encoders


def _fmt(mean: float, std: float, digits: int, pm: str) -> str:
    if not np.isfinite(mean):
        return MISSING
    text = f"{mean:.{digits}f}"
    return text + (f" {pm} {std:.{digits}f}" if np.isfinite(std) else "")


def _notes(body) -> list[str]:
    notes = {}
    for task, _, _, cells in body:
        missing = {enc: note for enc, (mean, _, _, note) in cells.items() if not np.isfinite(mean)}
        if missing and len(set(missing.values())) == 1 and len(missing) == len(cells):
            notes.setdefault(f"every encoder: {next(iter(missing.values())) or 'no result'}", []).append(task)
            continue
        for enc, note in missing.items():
            notes.setdefault(f"{enc}: {note or 'no result'}", []).append(task)
    return [f"{text} ({', '.join(tasks)})" for text, tasks in notes.items()]


def missing_cells(df: pd.DataFrame, primary: Mapping[str, str] = PRIMARY_METRIC) -> tuple[int, int]:
    """(n/a cells, all cells) over every rendered table of ``df``."""
    missing = total = 0
    for probe, split in _table_keys(df):
        body, _ = _cells(df, probe, split, primary)
        for _, _, _, cells in body:
            total += len(cells)
            missing += sum(not np.isfinite(c[0]) for c in cells.values())
    return missing, total


def _table_keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = set(zip(df["probe"].astype(str), df["split"].astype(str), strict=True))
    return sorted(pairs, key=lambda p: (rank(PROBE_ORDER, p[0]), split_rank(p[1])))


def markdown_table(df: pd.DataFrame, probe: str, split: str,
                   primary: Mapping[str, str] = PRIMARY_METRIC) -> str:
    """One Markdown table: tasks as rows, encoders as columns, best per row in bold."""
    body, encoders = _cells(df, probe, split, primary)
    lines = ["| task | " + " | ".join(encoders) + " |", "|---|" + "---:|" * len(encoders)]
    for task, metric, digits, cells in body:
        out = []
        for e in encoders:
            mean, std, bold, _ = cells[e]
            text = _fmt(mean, std, digits, "±")
            out.append(f"**{text}**" if bold else text)
        lines.append(f"| {task} ({METRIC_LABEL.get(metric, metric)}) | " + " | ".join(out) + " |")
    notes = _notes(body)
    if notes:
        lines += ["", f"{MISSING}: " + "; ".join(notes)]
    return "\n".join(lines)


def markdown_tables(df: pd.DataFrame, primary: Mapping[str, str] = PRIMARY_METRIC) -> str:
    """Every (probe, split) table of ``df`` in Markdown, each under a heading."""
    parts = []
    missing, total = missing_cells(df, primary)
    if missing:
        parts.append(f"{missing} of {total} cells are n/a; each table's note says why.")
    for probe, split in _table_keys(df):
        parts.append(f"### {probe} probe, {split} split\n\n{_protocol(df, probe, split)}\n\n"
                     + markdown_table(df, probe, split, primary))
    return "\n\n".join(parts) + "\n"


def _protocol(df: pd.DataFrame, probe: str, split: str) -> str:
    """What one table's cells average over, in words."""
    sub = df[(df["probe"] == probe) & (df["split"] == split)]
    n = int(sub["n_seeds"].max()) if len(sub) and pd.notna(sub["n_seeds"].max()) else 0
    runs = int(sub["n_pretrain_runs"].max()) if "n_pretrain_runs" in sub and len(sub) and pd.notna(
        sub["n_pretrain_runs"].max()) else 1
    over = f"{n} seeds" + (f" (seed i fits pretraining run i of {runs} for satclip and satclip-random)"
                           if runs > 1 else "")
    seen = " (on a held-out continent: over test points whose class occurs in training)" \
        if split.startswith("continent") else ""
    return (f"Mean ± std over {over}; R² for regression, top-1 accuracy for classification{seen}; "
            "best per row in bold.")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain ``text``."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(df: pd.DataFrame, probe: str, split: str,
                primary: Mapping[str, str] = PRIMARY_METRIC) -> str:
    """One LaTeX (booktabs) table: tasks as rows, encoders as columns, best per row in bold."""
    body, encoders = _cells(df, probe, split, primary)
    n = df.loc[(df["probe"] == probe) & (df["split"] == split), "n_seeds"].max()
    label = re.sub(r"[^a-z0-9]+", "-", f"{probe}-{split}".lower()).strip("-")
    caption = (f"Downstream results, {latex_escape(probe)} probe, {latex_escape(split)} split: "
               f"mean $\\pm$ std over {int(n) if pd.notna(n) else 0} seeds; R$^2$ for regression, "
               "top-1 accuracy for classification; best per row in bold.")
    notes = _notes(body)
    if notes:
        caption += " " + latex_escape(f"{MISSING}: " + "; ".join(notes)) + "."
    lines = [r"\begin{table}[ht]", r"\centering", f"\\caption{{{caption}}}",
             f"\\label{{tab:downstream-{label}}}",
             r"\begin{tabular}{l" + "r" * len(encoders) + "}", r"\toprule",
             "Task & " + " & ".join(latex_escape(e) for e in encoders) + r" \\", r"\midrule"]
    for task, metric, digits, cells in body:
        out = []
        for e in encoders:
            mean, std, bold, _ = cells[e]
            text = _fmt(mean, std, digits, r"$\pm$")
            out.append(f"\\textbf{{{text}}}" if bold else text)
        row = f"{latex_escape(task)} ({METRIC_LATEX.get(metric, latex_escape(metric))})"
        lines.append(row + " & " + " & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def latex_tables(df: pd.DataFrame, primary: Mapping[str, str] = PRIMARY_METRIC) -> str:
    r"""Every (probe, split) table of ``df`` in LaTeX (needs ``\usepackage{booktabs}``)."""
    return "\n\n".join(latex_table(df, p, s, primary) for p, s in _table_keys(df)) + "\n"


def _read_per_task(path_of, tasks: list[str], what: str) -> pd.DataFrame:
    frames = []
    for task in tasks:
        path = path_of(task)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {what} for task {task!r}; run its evaluate stage")
        frames.append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    return pd.concat(frames, ignore_index=True)


def collect_results(layout: Layout, tasks: list[str]) -> pd.DataFrame:
    """Join every task's tidy table (``Layout.task_table``), tasks in the given order."""
    return sort_results(_read_per_task(layout.task_table, tasks, "results"))


def collect_scores(layout: Layout, tasks: list[str]) -> pd.DataFrame:
    """Join every task's per-fit scores (``Layout.task_scores``)."""
    return _read_per_task(layout.task_scores, tasks, "scores")


def verdict_report(verdict: pd.DataFrame, protocols_only: bool = False) -> str:
    """The verdict in Markdown: a sentence and a table per protocol (``verdict.PROTOCOLS``), then the rest."""
    parts = []
    shown = set()
    rest = () if protocols_only else tuple(k for k in _table_keys(verdict)
                                           if (k[0], k[1].split(":")[0]) not in PROTOCOLS)
    keys = PROTOCOLS + rest
    for probe, split in keys:
        split = split.split(":")[0]
        if (probe, split) in shown:
            continue
        shown.add((probe, split))
        sentence = verdict_sentence(verdict, probe, split)
        if sentence:
            parts += [sentence, verdict_markdown(verdict, probe, split)]
    return "\n\n".join(parts) + "\n"


def write_tables(results: pd.DataFrame, layout: Layout, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """``downstream.csv``, its Markdown and LaTeX tables, the verdict and ``metrics/downstream.json``.

    ``downstream.json`` holds the verdict counts (``"verdict"``), the same counts on the probes'
    validation loss (``"validation_verdict"``, no test point: what a sweep chooses by), how far
    that loss lies below the best baseline's (``"validation_margin"``: ranks sweep points where the
    counts tie) and then ``task -> encoder -> probe -> split -> metric -> mean``.

    Returns the verdict (``verdict.VERDICT_COLUMNS``; empty without ``scores``).
    """
    verdict = paired_verdict(scores, results) if scores is not None else pd.DataFrame()
    write_downstream_csv(results, layout.downstream_csv)
    write_text(layout.tables / "downstream.md", markdown_tables(results))
    write_text(layout.tables / "downstream.tex", latex_tables(results))
    if scores is not None:
        write_scores_csv(scores, layout.scores_csv)
        write_text(layout.verdict_csv, verdict.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
        write_text(layout.tables / "verdict.md", verdict_report(verdict))
    metrics = metrics_json(results)
    if len(verdict):
        metrics = {VERDICT: verdict_counts(verdict), **metrics}
        validation = paired_verdict(scores, results, metric=VAL_LOSS)
        # a probe / split without any validation loss (RANGE's leave-one-out linear probe) is left out
        scored = validation.groupby(["probe", "split"], sort=False)["outcome"].transform(lambda o: (o != "n/a").any())
        if scored.any():
            metrics = {VERDICT: metrics.pop(VERDICT), VALIDATION_VERDICT: verdict_counts(validation[scored]),
                       VALIDATION_MARGIN: validation_margin(scores), **metrics}
    write_text(layout.metrics("downstream"), json.dumps(metrics, indent=2) + "\n")
    return verdict
