"""Cross-task figures of a finished run: one function per figure, each returning a matplotlib Figure.

These draw from files on disk (the tidy ``downstream.csv``, the land-grid embeddings, the
pretraining history, a sweep's comparison table); ``satclip.stages.figures`` decides which data
goes into which file. Per-stage figures live in ``satclip.plots``; both share one style
(``satclip.plots.use_style``, called by every stage notebook):
seaborn's colour-blind-safe "colorblind" palette for categories, ``cividis`` for values, axis
labels with units and a caption line saying what data and protocol made the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from satclip.evaluation.metrics import LOWER_IS_BETTER, PRIMARY_METRIC
from satclip.plots import PRIMARY_LABEL, add_caption, embedding_map

HEAT = "cividis"  # colour-blind-safe sequential map for scores
BOUNDED = {"r2", "accuracy", "macro_f1"}  # at most 1: the bar charts share the axis [FLOOR, 1]
FLOOR = -0.25  # lowest R² shown; lower means and error bars are cut at the axis


def primary_metric(task: str) -> str:
    """The metric a task is scored by: R² for regression, accuracy for classification."""
    from satclip.data.labels import TASKS

    return PRIMARY_METRIC[TASKS[task].kind] if task in TASKS else "r2"


def _label(metric: str) -> str:
    return PRIMARY_LABEL.get(metric, metric)


def _finish(fig: plt.Figure, caption: str, bottom: float = 0.05) -> plt.Figure:
    """Lay ``fig`` out above a strip of height ``bottom`` (a fraction) holding the caption."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    if caption:
        add_caption(fig, caption)
    return fig


def embedding_maps(lon: np.ndarray, lat: np.ndarray, grids: dict[str, np.ndarray], *, step_deg: float,
                   caption: str = "", ncols: int = 2) -> plt.Figure:
    """Every encoder's land-grid embedding as a PCA-to-RGB world map, side by side.

    Args:
        lon, lat: (M,) grid cell centres in degrees, on a ``step_deg`` grid.
        grids: encoder name -> (M, d) embeddings, drawn in the dict's order.
    """
    if not grids:
        raise ValueError("no embeddings to draw: every encoder was unavailable")
    names = list(grids)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 3.7 * nrows + 0.3), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names, strict=False):
        embedding_map(lon, lat, grids[name], title=f"{name} (d = {grids[name].shape[1]})", step_deg=step_deg, ax=ax)
    return _finish(fig, caption, 0.03)


def task_panels(results: pd.DataFrame, tasks: Sequence[str], *, caption: str = "", title: str = "") -> plt.Figure:
    """Bars of each task's primary metric: a row per task, a column per split, encoders on the x
    axis and one bar per probe; error bars are one standard deviation over seeds.

    ``results`` is the tidy table (``task, encoder, probe, split, metric, mean, std``).
    """
    import seaborn as sns

    tasks = [t for t in tasks if t in set(results["task"])]
    if not tasks:
        raise ValueError("none of the requested tasks is in the results")
    splits = list(dict.fromkeys(results["split"]))
    encoders = list(dict.fromkeys(results["encoder"]))
    probes = list(dict.fromkeys(results["probe"]))
    palette = sns.color_palette("colorblind", len(probes))
    width = 0.8 / len(probes)
    fig, axes = plt.subplots(len(tasks), len(splits), figsize=(1.0 * len(encoders) * len(splits) + 2.5,
                                                                  3.3 * len(tasks) + 0.6),
                             squeeze=False, sharey="row")
    for r, task in enumerate(tasks):
        metric = primary_metric(task)
        rows = results[(results["task"] == task) & (results["metric"] == metric)]
        for c, split in enumerate(splits):
            ax = axes[r][c]
            sub = rows[rows["split"] == split]
            for j, probe in enumerate(probes):
                vals = sub[sub["probe"] == probe].set_index("encoder").reindex(encoders)
                x = np.arange(len(encoders)) + (j - (len(probes) - 1) / 2) * width
                ax.bar(x, vals["mean"], width, yerr=vals["std"].fillna(0), color=palette[j], label=probe,
                       capsize=2, error_kw={"elinewidth": 0.8})
            ax.set_xticks(np.arange(len(encoders)), encoders, rotation=30, ha="right")
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_title(f"{task}: {split} split")
            if metric in BOUNDED and rows["mean"].notna().any():  # a wild error bar must not squash the bars
                ax.set_ylim(max(FLOOR, min(0.0, float(rows["mean"].min()) - 0.05)), 1.02)
            if c == 0:
                ax.set_ylabel(_label(metric))
    axes[0][-1].legend(title="probe", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the bars
    if title:
        fig.suptitle(title)
    return _finish(fig, caption, 0.03)


def score_heatmap(results: pd.DataFrame, *, probe: str, split: str, caption: str = "") -> plt.Figure:
    """Tasks x encoders of the primary metric for one probe and split; the best per task is boxed.

    Colours are per row (each task's scores scaled to its own range), so tasks with different
    metrics share one map; the cells print the values (mean over seeds).
    """
    sub = results[(results["probe"] == probe) & (results["split"] == split)]
    if sub.empty:
        raise ValueError(f"no results for probe {probe!r} and split {split!r}")
    tasks = list(dict.fromkeys(sub["task"]))
    encoders = list(dict.fromkeys(sub["encoder"]))
    values = np.full((len(tasks), len(encoders)), np.nan)
    metrics = []
    for i, task in enumerate(tasks):
        metric = primary_metric(task)
        metrics.append(metric)
        scores = sub[(sub["task"] == task) & (sub["metric"] == metric)].set_index("encoder")["mean"]
        values[i] = scores.reindex(encoders).to_numpy(dtype=float)
    lo, hi = np.nanmin(values, axis=1, keepdims=True), np.nanmax(values, axis=1, keepdims=True)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    scaled = np.where(np.array([m in LOWER_IS_BETTER for m in metrics])[:, None], 1 - scaled, scaled)
    fig, ax = plt.subplots(figsize=(1.25 * len(encoders) + 3.2, 0.55 * len(tasks) + 1.6))
    ax.imshow(np.ma.masked_invalid(scaled), cmap=HEAT, vmin=0, vmax=1, aspect="auto")
    ax.set_facecolor("0.88")  # a missing score (encoder unavailable) shows as a light grey cell
    ax.grid(False)
    for i in range(len(tasks)):
        row = values[i]
        best = (np.nanargmin(row) if metrics[i] in LOWER_IS_BETTER else np.nanargmax(row)) if np.isfinite(row).any() else -1
        for j in range(len(encoders)):
            text = "n/a" if np.isnan(row[j]) else f"{row[j]:.2f}"
            colour = "black" if np.isnan(row[j]) or scaled[i, j] > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour,
                    fontweight="bold" if j == best else "normal")
        if best >= 0:
            ax.add_patch(plt.Rectangle((best - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#D55E00", lw=2.2))
    ax.set_xticks(np.arange(len(encoders)), encoders, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(tasks)), [f"{t} ({_label(m)})" for t, m in zip(tasks, metrics, strict=True)])
    ax.set_xlabel("encoder")
    ax.set_ylabel("task (metric)")
    ax.set_title(f"{probe} probe, {split} split (best per task boxed; colour scaled per row)")
    return _finish(fig, caption)


def comparison_chart(table: pd.DataFrame, *, x: str, tasks: Sequence[str], encoder: str = "satclip",
                     caption: str = "", title: str = "", x_label: str | None = None) -> plt.Figure:
    """A sweep's comparison: each task's score (``<task>`` columns) against the varied parameter ``x``.

    ``table`` has one row per experiment, the column ``x`` and one column per task holding the
    primary metric of ``encoder``; optional ``<task>_std`` columns give error bars.
    """
    import seaborn as sns

    tasks = [t for t in tasks if t in table.columns]
    if not tasks:
        raise ValueError("the comparison table has no task columns")
    numeric = pd.api.types.is_numeric_dtype(table[x])
    order = table.sort_values(x) if numeric else table
    xs = order[x].to_numpy() if numeric else np.arange(len(order))
    palette = sns.color_palette("colorblind", len(tasks))
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for colour, task in zip(palette, tasks, strict=True):
        std = order[f"{task}_std"] if f"{task}_std" in order.columns else None
        ax.errorbar(xs, order[task], yerr=std, marker="o", capsize=3, color=colour,
                    label=f"{task} ({_label(primary_metric(task))})")
    if not numeric:
        ax.set_xticks(xs, order[x].astype(str), rotation=30, ha="right")
    elif len(xs) <= 8:
        ax.set_xticks(xs)
    ax.set_xlabel(x_label or x)
    ax.set_ylabel(f"{encoder}: R² (regression) / accuracy (classes)")
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    if title:
        ax.set_title(title)
    return _finish(fig, caption)
