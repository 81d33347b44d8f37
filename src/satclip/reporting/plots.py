"""The figures inside one stage's report: one function per figure, each returning a matplotlib Figure.

The figures are maps of labels, histograms, training curves, per-task bars and prediction
maps; the shared style (``use_style``), ``show`` and ``save`` are here too. The run's
cross-task figures are in ``reporting.summary``.

Style: colour-blind-safe palettes (viridis / cividis for values, seaborn "colorblind" for
categories), axis labels with units, a caption line saying what data made the figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SEQUENTIAL = "viridis"


def use_style() -> None:
    """The suite's figure style for every stage (call once per notebook, before drawing)."""
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.titleweight": "bold"})


def show(fig: plt.Figure) -> None:
    """Display a figure once in a notebook (then close it so the inline backend does not repeat it)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def add_caption(fig: plt.Figure, text: str) -> None:
    """A small grey line at the bottom-left of ``fig`` saying what data and protocol made it."""
    fig.text(0.01, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom")


def _world_axes(ax: plt.Axes, countries=None) -> None:
    if countries is not None:
        countries.boundary.plot(ax=ax, linewidth=0.3, color="0.55", zorder=1)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")


def points_map(df: pd.DataFrame, *, kind: str, title: str, unit: str = "", countries=None,
               caption: str = "", max_points: int = 20000) -> plt.Figure:
    """World map of a task's points coloured by ``target`` (classes: cycled categorical colours)."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    _world_axes(ax, countries)
    sub = df.sample(min(len(df), max_points), random_state=0) if len(df) > max_points else df
    if kind == "classification":
        codes, uniques = pd.factorize(sub["target"], sort=True)
        cmap = plt.get_cmap("tab20", 20)
        ax.scatter(sub["lon"], sub["lat"], c=codes % 20, cmap=cmap, vmin=0, vmax=19, s=2, zorder=2)
        ax.set_title(f"{title} ({len(df):,} points, {len(uniques)} classes)")
    else:
        sc = ax.scatter(sub["lon"], sub["lat"], c=sub["target"], cmap=SEQUENTIAL, s=2, zorder=2)
        fig.colorbar(sc, ax=ax, shrink=0.8, label=unit)
        ax.set_title(f"{title} ({len(df):,} points)")
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


def target_histogram(df: pd.DataFrame, *, kind: str, title: str, unit: str = "",
                     top: int = 20) -> plt.Figure:
    """Histogram of a regression target, or the ``top`` most frequent classes."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if kind == "classification":
        counts = df["target"].value_counts().head(top)[::-1]
        ax.barh([str(c)[:40] for c in counts.index], counts.to_numpy(), color="#0072B2")
        ax.set_xlabel("points")
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(f"{title}: {min(top, df['target'].nunique())} most frequent classes")
    else:
        ax.hist(df["target"], bins=60, color="#0072B2")
        ax.set_xlabel(unit)
        ax.set_ylabel("points")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) image -> (H, W, 3) in [0, 1] for display.

    3 bands are taken as display-ready RGB in [0, 1]; 13 Sentinel-2 bands as B04, B03, B02
    (indices 3, 2, 1), stretched by the 2nd-98th percentile.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == 3:
        return np.clip(image, 0, 1).transpose(1, 2, 0)
    rgb = image[[3, 2, 1]]
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    rgb = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1)
    return rgb.transpose(1, 2, 0)


def patch_grid(images: list[np.ndarray], points: np.ndarray, *, title: str, ncols: int = 8,
               caption: str = "") -> plt.Figure:
    """A grid of pretraining patches, each titled with its (lon, lat)."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.75 * nrows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, (lon, lat) in zip(axes.ravel(), images, points, strict=False):
        ax.imshow(to_rgb(image), interpolation="nearest")
        ax.set_title(f"{lon:.1f}, {lat:.1f}", fontsize=7)
    fig.suptitle(title, fontsize=10)
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


def pca_rgb(embeddings: np.ndarray) -> np.ndarray:
    """First three principal components of (N, d) embeddings, each scaled to [0, 1]: (N, 3).

    Fewer than three dimensions are zero-padded. Each component is min-max scaled after
    clipping at its 1st and 99th percentiles, so a few outliers do not wash out the map.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = x @ vt[:3].T  # (N, <=3)
    if comps.shape[1] < 3:
        comps = np.pad(comps, ((0, 0), (0, 3 - comps.shape[1])))
    lo, hi = np.percentile(comps, 1, axis=0), np.percentile(comps, 99, axis=0)
    return np.clip((comps - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


def embedding_map(lon: np.ndarray, lat: np.ndarray, embeddings: np.ndarray, *, title: str,
                  step_deg: float = 1.0, caption: str = "", ax: plt.Axes | None = None) -> plt.Figure:
    """The paper's signature figure: PCA-to-RGB of location embeddings on a land grid."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(9, 4.4))
    ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
    rgb = pca_rgb(embeddings)
    h, w = int(round(180 / step_deg)), int(round(360 / step_deg))
    canvas = np.ones((h, w, 3))  # white where there is no grid point (water)
    rows = np.clip(np.floor((90.0 - np.asarray(lat)) / step_deg).astype(int), 0, h - 1)
    cols = np.clip(np.floor((np.asarray(lon) + 180.0) / step_deg).astype(int), 0, w - 1)
    canvas[rows, cols] = rgb
    ax.imshow(canvas, extent=(-180, 180, -90, 90), interpolation="nearest", origin="upper")
    _world_axes(ax)
    ax.set_ylim(-60, 85)
    ax.set_title(title)
    if caption:
        add_caption(fig, caption)
    return fig


def training_curves(history: pd.DataFrame, *, chance_top1: float | None = None, caption: str = "") -> plt.Figure:
    """Pretraining curves per epoch: loss, retrieval accuracy, great-circle error, logit scale.

    A ``run`` column (several pretraining runs) draws one line per run, run 0 solid, the others
    dashed and dotted.
    """
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    runs = sorted(history["run"].unique()) if "run" in history else [None]
    styles = ["-", "--", ":", "-."]
    for i, run in enumerate(runs):
        h = history if run is None else history[history["run"] == run]
        ls = styles[i % len(styles)]
        tag = "" if run is None or len(runs) == 1 else f", run {run}"
        first = i == 0
        e = h["epoch"] + 1
        axes[0].plot(e, h["train_loss"], ls=ls, label="train" + tag, color="#0072B2")
        axes[0].plot(e, h["val_loss"], ls=ls, label="validation" + tag, color="#D55E00")
        axes[1].plot(e, 100 * h["val_top1"], ls=ls, label="top-1" + tag, color="#0072B2")
        axes[1].plot(e, 100 * h["val_top5"], ls=ls, label="top-5" + tag if first or len(runs) <= 3 else None,
                     color="#009E73")
        axes[2].plot(e, h["val_median_km"], ls=ls, color="#CC79A7", label=f"run {run}" if tag else None)
        axes[3].plot(e, h["scale"], ls=ls, color="#E69F00")
    axes[0].set_ylabel("InfoNCE loss")
    axes[0].legend(fontsize=7)
    if chance_top1:
        axes[1].axhline(100 * chance_top1, color="0.5", ls="--", lw=1, label="chance (top-1)")
    axes[1].set_ylabel("val image->location in batch (%)")
    axes[1].legend(fontsize=7)
    axes[2].set_ylabel("val median error (km)")
    if len(runs) > 1:
        axes[2].legend(fontsize=7)
    axes[3].set_ylabel("exp(logit scale)")
    for ax in axes:
        ax.set_xlabel("epoch")
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


def retrieval_examples(images: list[np.ndarray], true_points: np.ndarray, top_points: np.ndarray, *,
                       countries=None, caption: str = "") -> plt.Figure:
    """Images with their true location and top-k predicted candidate locations on a world map.

    Args:
        images: n arrays (C, H, W).
        true_points: (n, 2) (lon, lat).
        top_points: (n, k, 2) predicted (lon, lat), best first.
        countries: optional country polygons (a GeoDataFrame, e.g. ``countries_frame()``) whose
            boundaries are drawn under the points; None draws no boundaries.
        caption: a line at the bottom of the figure saying what made it; empty for none.
    """
    n = len(images)
    # a row of small patches over a map as wide as the figure (an equal-aspect world map in half
    # of a wide figure's height came out thumbnail-sized)
    fig = plt.figure(figsize=(11, 7.4))
    grid = fig.add_gridspec(2, max(n, 1), height_ratios=(1, 3.4))
    palette = plt.get_cmap("tab10")
    for i, image in enumerate(images):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(to_rgb(image), interpolation="nearest")
        ax.set_title(f"image {i + 1}", color=palette(i % 10), fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    _world_axes(ax, countries)
    for i in range(n):
        color = palette(i % 10)
        ax.scatter(top_points[i, :, 0], top_points[i, :, 1], color=color, marker="x", s=30, zorder=3)
        ax.scatter(true_points[i, 0], true_points[i, 1], color=color, marker="*", s=160,
                   edgecolor="black", linewidths=0.6, zorder=4)
    ax.set_title("true location (star) and top-5 predicted locations (crosses)")
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


PRIMARY_LABEL = {"r2": "R$^2$", "accuracy": "top-1 accuracy", "mse": "MSE (standardized)",
                 "mae": "MAE", "macro_f1": "macro-F1"}


def task_bars(results: pd.DataFrame, metric: str, *, title: str, caption: str = "") -> plt.Figure:
    """Grouped bars of one task's ``metric``: encoders on the x axis, one bar per probe, one panel per split.

    ``results`` has the tidy columns ``encoder, probe, split, metric, mean, std``; error bars are
    one standard deviation over seeds. The y axis spans the means (R² and accuracy within [-0.5,
    1]); a bar or error bar beyond it is cut at the edge and its value written there, so one
    extrapolating fit (R² of -900 on a held-out continent) does not flatten every other bar.
    """
    import seaborn as sns

    rows = results[results["metric"] == metric]
    finite = rows["mean"][np.isfinite(rows["mean"])]
    low = min(0.0, float(finite.min())) if len(finite) else 0.0
    high = max(0.0, float(finite.max())) if len(finite) else 1.0
    if metric in ("r2", "accuracy", "accuracy_seen", "macro_f1"):
        low, high = max(low, -0.5), min(max(high, 0.05), 1.0)
    pad = 0.08 * (high - low or 1.0)
    ylim = (low - pad if low < 0 else 0.0, high + pad)
    splits = list(dict.fromkeys(rows["split"]))
    encoders = list(dict.fromkeys(rows["encoder"]))
    probes = list(dict.fromkeys(rows["probe"]))
    palette = sns.color_palette("colorblind", len(probes))
    fig, axes = plt.subplots(1, max(1, len(splits)), figsize=(4.6 * max(1, len(splits)), 3.6),
                             sharey=True, squeeze=False)
    width = 0.8 / max(1, len(probes))
    for ax, split in zip(axes[0], splits, strict=False):
        sub = rows[rows["split"] == split]
        for j, probe in enumerate(probes):
            vals = sub[sub["probe"] == probe].set_index("encoder").reindex(encoders)
            x = np.arange(len(encoders)) + (j - (len(probes) - 1) / 2) * width
            mean = vals["mean"].to_numpy(dtype=float)
            shown = np.clip(mean, *ylim)
            lo_err = np.clip(mean - vals["std"].fillna(0).to_numpy(dtype=float), *ylim)
            hi_err = np.clip(mean + vals["std"].fillna(0).to_numpy(dtype=float), *ylim)
            ax.bar(x, shown, width, yerr=[shown - lo_err, hi_err - shown], color=palette[j], label=probe, capsize=2)
            for xi, m, sh in zip(x, mean, shown, strict=True):
                if np.isfinite(m) and m != sh:  # cut at the axis: say how far it went
                    ax.annotate(f"{m:.2g}", (xi, sh), ha="center", va="top" if m > sh else "bottom", fontsize=6,
                                rotation=90, color="white")
        ax.set_xticks(np.arange(len(encoders)), encoders, rotation=35, ha="right")
        ax.set_title(f"{split} split")
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_ylim(*ylim)
    axes[0][0].set_ylabel(PRIMARY_LABEL.get(metric, metric))
    fig.legend(*axes[0][0].get_legend_handles_labels(), title="probe", fontsize=8, loc="upper right",
               bbox_to_anchor=(1.0, 1.0), ncol=len(probes))
    fig.suptitle(title)
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


def prediction_map(predictions: pd.DataFrame, *, kind: str, title: str, unit: str = "", countries=None,
                   caption: str = "") -> plt.Figure:
    """Test points of one fit: residuals (prediction - target) for regression, right/wrong for classes."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    _world_axes(ax, countries)
    if kind == "classification":
        right = predictions["prediction"].astype(str) == predictions["target"].astype(str)
        ax.scatter(predictions.loc[right, "lon"], predictions.loc[right, "lat"], s=2, color="#0072B2",
                   label=f"correct ({right.mean():.0%})", zorder=2)
        ax.scatter(predictions.loc[~right, "lon"], predictions.loc[~right, "lat"], s=2, color="#D55E00",
                   label="wrong", zorder=2)
        ax.legend(markerscale=4, loc="lower left")
    else:
        resid = predictions["prediction"] - predictions["target"]
        lim = float(np.nanpercentile(np.abs(resid), 98)) or 1.0
        sc = ax.scatter(predictions["lon"], predictions["lat"], c=resid, cmap="PuOr_r", vmin=-lim, vmax=lim,
                        s=2, zorder=2)
        fig.colorbar(sc, ax=ax, shrink=0.8, label=f"prediction - target ({unit})")
    lon_span = predictions["lon"].max() - predictions["lon"].min()
    if lon_span < 60:  # a regional task (California): zoom in
        pad = 1.0
        ax.set_xlim(predictions["lon"].min() - pad, predictions["lon"].max() + pad)
        ax.set_ylim(predictions["lat"].min() - pad, predictions["lat"].max() + pad)
    ax.set_title(title)
    if caption:
        add_caption(fig, caption)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path_stem, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list:
    """Write ``fig`` as ``<path_stem>.png`` (and ``.pdf``), each atomically; return the paths."""
    from pathlib import Path

    from satclip.io import atomic_path

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight",
                        metadata={"CreationDate": None} if fmt == "pdf" else None)
        out.append(path)
    return out
