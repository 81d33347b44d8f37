"""Cross-task figures of a finished run: one function per figure, each returning a matplotlib Figure.

These draw from files on disk (the tidy ``downstream.csv``, the land-grid embeddings, the
pretraining history, a sweep's comparison table); ``draw_summary_figures`` draws them all into
``Layout.summary_figures`` (the figures stage calls it), ``describe`` says what each one shows. Per-stage figures live in ``satclip.reporting.plots``; both share one style
(``satclip.reporting.plots.use_style``, called by every stage notebook):
seaborn's colour-blind-safe "colorblind" palette for categories, ``cividis`` for values, axis
labels with units and a caption line saying what data and protocol made the figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from satclip.config import Params, params_hash
from satclip.data.labels import TASKS
from satclip.evaluation.metrics import LOWER_IS_BETTER, PRIMARY_METRIC
from satclip.extraction.store import GRID_STEP_DEG, grid_embeddings
from satclip.paths import Layout
from satclip.reporting import plots
from satclip.reporting.plots import PRIMARY_LABEL, add_caption, embedding_map

HEAT = "cividis"  # colour-blind-safe sequential map for scores
BOUNDED = {"r2", "accuracy", "macro_f1"}  # at most 1: the bar charts share the axis [FLOOR, 1]
FLOOR = -0.25  # lowest R² shown; lower means and error bars are cut at the axis


def primary_metric(task: str) -> str:
    """The metric a task is scored by: R² for regression, accuracy for classification."""
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
        lon: (M,) longitudes of the grid cell centres in degrees, on a ``step_deg`` grid.
        lat: (M,) latitudes of the grid cell centres in degrees, on a ``step_deg`` grid.
        grids: encoder name -> (M, d) embeddings, drawn in the dict's order.
        step_deg: spacing of the grid in degrees (the size of one map pixel).
        caption: a line at the bottom of the figure saying what made it; empty for none.
        ncols: number of maps per row.
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
    """Bars of each task's primary metric: a row per task, a column per split.

    Encoders are on the x axis, one bar per probe; error bars are one standard deviation over
    seeds.

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

    Each cell prints the mean ± std over seeds. R² and accuracy share one colour scale, the score
    itself from 0 to 1 (below 0 takes the bottom colour), so two encoders whose scores differ by
    less than their spread look alike; a row stretched to its own range made a 0.89 vs 0.93
    difference look like worst vs best. A task scored by another metric (not bounded by 1) is
    coloured by its own range, better to the right of the scale, and says so in its label.
    """
    sub = results[(results["probe"] == probe) & (results["split"] == split)]
    if sub.empty:
        raise ValueError(f"no results for probe {probe!r} and split {split!r}")
    tasks = list(dict.fromkeys(sub["task"]))
    encoders = list(dict.fromkeys(sub["encoder"]))
    values = np.full((len(tasks), len(encoders)), np.nan)
    spreads = np.full_like(values, np.nan)
    metrics = []
    for i, task in enumerate(tasks):
        metric = primary_metric(task)
        metrics.append(metric)
        scores = sub[(sub["task"] == task) & (sub["metric"] == metric)].set_index("encoder").reindex(encoders)
        values[i] = scores["mean"].to_numpy(dtype=float)
        spreads[i] = scores["std"].to_numpy(dtype=float)
    shade = np.clip(values, 0.0, 1.0)
    own_range = [m not in BOUNDED for m in metrics]
    for i in np.flatnonzero(own_range):   # not on the shared 0-1 scale: this row's own range
        lo, hi = np.nanmin(values[i]), np.nanmax(values[i])
        shade[i] = (values[i] - lo) / (hi - lo if hi > lo else 1.0)
        shade[i] = 1 - shade[i] if metrics[i] in LOWER_IS_BETTER else shade[i]
    fig, ax = plt.subplots(figsize=(1.45 * len(encoders) + 3.4, 0.55 * len(tasks) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(shade), cmap=HEAT, vmin=0, vmax=1, aspect="auto")
    ax.set_facecolor("0.88")  # a missing score (encoder unavailable) shows as a light grey cell
    ax.grid(False)
    for i in range(len(tasks)):
        row = values[i]
        best = (np.nanargmin(row) if metrics[i] in LOWER_IS_BETTER else np.nanargmax(row)) if np.isfinite(row).any() else -1
        for j in range(len(encoders)):
            text = "n/a" if np.isnan(row[j]) else f"{row[j]:.2f}"
            if np.isfinite(row[j]) and np.isfinite(spreads[i, j]):
                text += f" ± {spreads[i, j]:.2f}"
            colour = "black" if np.isnan(row[j]) or shade[i, j] > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=8.5, color=colour,
                    fontweight="bold" if j == best else "normal")
        if best >= 0:
            ax.add_patch(plt.Rectangle((best - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#D55E00", lw=2.2))
    ax.set_xticks(np.arange(len(encoders)), encoders, rotation=30, ha="right")
    ax.set_yticks(np.arange(len(tasks)), [f"{t} ({_label(m)}{', own scale' if own else ''})"
                                          for t, m, own in zip(tasks, metrics, own_range, strict=True)])
    ax.set_xlabel("encoder")
    ax.set_ylabel("task (metric)")
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.015, label="score (R², accuracy)")
    ax.set_title(f"{probe} probe, {split} split: mean ± std over seeds (best per task boxed)")
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
    # a point that leaves the param unset (null: learned temperature, no clamp) has no place on a
    # numeric axis: then every point is a category, labelled by its value ("null" for the unset one)
    numeric = pd.api.types.is_numeric_dtype(table[x]) and bool(table[x].notna().all())
    order = table.sort_values(x) if numeric else table
    xs = order[x].to_numpy() if numeric else np.arange(len(order))
    palette = sns.color_palette("colorblind", len(tasks))
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for colour, task in zip(palette, tasks, strict=True):
        std = order[f"{task}_std"] if f"{task}_std" in order.columns else None
        ax.errorbar(xs, order[task], yerr=std, marker="o", capsize=3, color=colour,
                    label=f"{task} ({_label(primary_metric(task))})")
    if not numeric:
        ax.set_xticks(xs, ["null" if pd.isna(v) else str(v) for v in order[x]], rotation=30, ha="right")
    elif len(xs) <= 8:
        ax.set_xticks(xs)
    ax.set_xlabel(x_label or x)
    ax.set_ylabel(f"{encoder}: R² (regression) / accuracy (classes)")
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    if title:
        ax.set_title(title)
    return _finish(fig, caption)


HEADLINE_TASKS = ("population", "biomes")  # the paper's headline tasks (Klemmer et al. 2025, Fig. 4)


@dataclass(frozen=True)
class FigureFile:
    """One written figure: its PNG path (a PDF sits beside it) and a line on what it shows."""

    name: str
    png: Path
    description: str


def describe(name: str) -> str:
    """One line on what the summary figure ``name`` (file stem) shows."""
    if name == "embedding_maps":
        return ("Every encoder's location embedding on a 1° land grid, first three principal components "
                "as RGB (the paper's Figure 1 style).")
    if name == "headline":
        return "Population density and biomes: every encoder × probe with error bars, random vs spatial split."
    if name.startswith("task_"):
        return f"{name.removeprefix('task_')}: every encoder × probe, random vs spatial split."
    if name == "heatmap":
        return ("Tasks × encoders, MLP probe on the spatial split: mean ± std over seeds, colour the score on "
                "one 0-1 scale; the best encoder per task is boxed.")
    if name.startswith("compare_"):
        return f"Sweep {name.removeprefix('compare_')}: every task's score against the swept parameter (make compare)."
    if name == "pretrain_curves":
        return ("Pretraining curves per epoch: InfoNCE loss, within-batch retrieval accuracy, median "
                "great-circle error, temperature.")
    return "Figure of this run."


def spatial_split(splits: list[str]) -> str | None:
    """The spatial split the heat map uses: ``checkerboard`` when run, else the first non-random."""
    if "checkerboard" in splits:
        return "checkerboard"
    return next((s for s in splits if s != "random"), None)


def run_caption(params: Params, results: pd.DataFrame | None = None) -> str:
    """One line on the data and protocol behind a figure."""
    loc = params.pretrain.location
    text = (f"pretrained on {params.pretrain.dataset} ({params.download.bluemarble.n_points:,} pairs)"
            if params.pretrain.dataset == "bluemarble" else f"pretrained on {params.pretrain.dataset}")
    text += f"; SatCLIP {loc.encoding} L={loc.legendre_polys} {loc.network}"
    if results is not None:
        seeds = sorted({int(n) for n in results["n_seeds"].dropna() if n > 0})   # 0: an n/a cell
        count = "/".join(map(str, seeds)) or "0"
        text += (f"; probes {', '.join(dict.fromkeys(results['probe']))}; splits "
                 f"{', '.join(dict.fromkeys(results['split']))}; mean ± 1 std over {count} "
                 f"seed{'' if seeds == [1] else 's'}")
    return f"{text}; params {params_hash(params)}"


def _save(fig: plt.Figure, folder: Path, name: str, show: bool) -> FigureFile:
    paths = plots.save(fig, folder / name)
    if show:
        plots.show(fig)
    else:
        plt.close(fig)
    return FigureFile(name, paths[0], describe(name))


def draw_summary_figures(params: Params, show: bool = False) -> list[FigureFile]:
    """Draw every figure of the run into ``Layout.summary_figures``; return them in display order.

    ``show`` also displays each figure (in the stage notebook). Raises ``FileNotFoundError``
    naming the missing input when an upstream stage has not run.
    """
    plots.use_style()
    layout = Layout.of(params)
    table = layout.downstream_csv
    history_csv = layout.history
    for path, stage in ((table, "tables"), (history_csv, "pretrain")):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the {stage} stage first")
    results = pd.read_csv(table, keep_default_na=False, na_values=[""])
    history = pd.read_csv(history_csv)
    lon, lat, grids = grid_embeddings(params)
    if not grids:
        raise FileNotFoundError("no land-grid embeddings: every encoder in extract.encoders was unavailable "
                                "(see results/metrics/extract.json)")
    out_dir = layout.summary_figures  # every input is read: only now are the old figures removed
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*"):  # a task or split dropped from params leaves no stale figure
        old.unlink()
    caption = run_caption(params, results)
    written = []

    fig = embedding_maps(lon, lat, grids, step_deg=GRID_STEP_DEG, caption=run_caption(params) +
                                 f"; PCA of each encoder's embedding of {len(lon):,} land cells "
                                 f"({GRID_STEP_DEG:g} degree) to RGB")
    written.append(_save(fig, out_dir, "embedding_maps", show))

    tasks = list(dict.fromkeys(results["task"]))
    headline = [t for t in HEADLINE_TASKS if t in tasks]
    if headline:
        fig = task_panels(results, headline, caption=caption,
                                  title="Headline tasks: every encoder and probe, random vs spatial split")
        written.append(_save(fig, out_dir, "headline", show))
    for task in (t for t in tasks if t not in headline):
        fig = task_panels(results, [task], caption=caption)
        written.append(_save(fig, out_dir, f"task_{task}", show))

    split = spatial_split(list(dict.fromkeys(results["split"])))
    probe = "mlp" if "mlp" in set(results["probe"]) else str(results["probe"].iloc[0])
    if split is not None:
        fig = score_heatmap(results, probe=probe, split=split, caption=caption)
        written.append(_save(fig, out_dir, "heatmap", show))

    metrics_file = layout.metrics("pretrain")
    chance = json.loads(metrics_file.read_text()).get("chance_top1") if metrics_file.is_file() else None
    fig = plots.training_curves(history, chance_top1=chance, caption=run_caption(params) +
                                f"; batch {params.pretrain.trainer.batch_size}, validation within-batch retrieval")
    written.append(_save(fig, out_dir, "pretrain_curves", show))
    written += comparison_figures(params, out_dir, show)
    return written


def comparison_figures(params: Params, out_dir: Path, show: bool = False) -> list[FigureFile]:
    """``compare_<sweep>`` for every comparison table ``make compare`` wrote (none: an empty list)."""
    written = []
    for table_file in sorted(Layout.of(params).compare.glob("*.csv")):
        fig = comparison_chart_of(pd.read_csv(table_file), table_file.stem, table_file.with_suffix(".json"))
        written.append(_save(fig, out_dir, f"compare_{table_file.stem}", show))
    return written


def comparison_chart_of(table: pd.DataFrame, name: str, meta_file: str | Path | None = None,
                        meta: dict | None = None) -> plt.Figure:
    """The comparison figure of a table ``satclip compare`` wrote (``meta_file``: its ``.json``, or ``meta``)."""
    if meta is None:
        meta = json.loads(Path(meta_file).read_text()) if meta_file and Path(meta_file).is_file() else {}
    x = meta.get("x") if meta.get("x") in table.columns else "point"
    encoder = meta.get("encoder", "satclip")
    return comparison_chart(
        table, x=x, tasks=[c for c in table.columns if c in TASKS], encoder=encoder,
        title=meta.get("description") or name, x_label=x.rsplit(".", 1)[-1] if x != "point" else "experiment",
        caption=f"sweep {name} ({len(table)} experiments, x = {x}); {meta.get('protocol', encoder)}")


def recorded_figures(params: Params) -> list[FigureFile]:
    """The summary figures already on disk (for rebuilding the index without redrawing)."""
    return [FigureFile(p.stem, p, describe(p.stem)) for p in sorted(Layout.of(params).summary_figures.glob("*.png"))]
