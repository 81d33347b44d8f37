"""Figures: one function per figure, each returning a matplotlib Figure.

Style: colour-blind-safe palettes (viridis / cividis for values, seaborn "colorblind" for
categories), axis labels with units, a caption line saying what data made the figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SEQUENTIAL = "viridis"


def show(fig: plt.Figure) -> None:
    """Display a figure once in a notebook (then close it so the inline backend does not repeat it)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _caption(fig: plt.Figure, text: str) -> None:
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
        _caption(fig, caption)
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
        _caption(fig, caption)
    fig.tight_layout()
    return fig
