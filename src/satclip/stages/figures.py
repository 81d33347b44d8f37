"""The figures stage: the run's cross-task figures, drawn from results on disk (nothing is retrained).

Writes ``<results>/figures/summary/<name>.png`` and ``.pdf``:

- ``embedding_maps``: every available encoder's land-grid embedding, PCA to RGB, side by side;
- ``headline``: population density and biomes, every encoder x probe, random vs spatial split;
- ``task_<task>``: the same chart for each remaining task;
- ``heatmap``: tasks x encoders for the MLP probe on the spatial split, best boxed;
- ``pretrain_curves``: loss, retrieval accuracy, median error and temperature per epoch;
- ``compare_<sweep>``: for every sweep compared by ``make compare`` (``<results>/compare/<sweep>.csv``),
  each task's score against the swept parameter: the L = 10 / 20 / 40 comparison is
  ``compare_legendre``. ``make compare`` re-runs this stage; DVC does not track that folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from satclip import figures, plots
from satclip.config import Params

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
        return "Tasks × encoders, MLP probe on the spatial split; the best encoder per task is boxed."
    if name.startswith("compare_"):
        return f"Sweep {name.removeprefix('compare_')}: every task's score against the swept parameter (make compare)."
    if name == "pretrain_curves":
        return ("Pretraining curves per epoch: InfoNCE loss, within-batch retrieval accuracy, median "
                "great-circle error, temperature.")
    return "Figure of this run."


def summary_dir(params: Params) -> Path:
    """``<results>/figures/summary``: the figures stage's output folder."""
    return Path(params.paths.results) / "figures" / "summary"


def spatial_split(splits: list[str]) -> str | None:
    """The spatial split the heat map uses: ``checkerboard`` when run, else the first non-random."""
    if "checkerboard" in splits:
        return "checkerboard"
    return next((s for s in splits if s != "random"), None)


def run_caption(params: Params, results: pd.DataFrame | None = None) -> str:
    """One line on the data and protocol behind a figure."""
    from satclip.report import params_hash

    loc = params.pretrain.location
    text = (f"pretrained on {params.pretrain.dataset} ({params.download.bluemarble.n_points:,} pairs)"
            if params.pretrain.dataset == "bluemarble" else f"pretrained on {params.pretrain.dataset}")
    text += f"; SatCLIP {loc.encoding} L={loc.legendre_polys} {loc.network}"
    if results is not None:
        seeds = sorted({int(n) for n in results["n_seeds"].dropna()})
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


def run_figures(params: Params, show: bool = False) -> list[FigureFile]:
    """Draw every figure of the run into ``summary_dir``; return them in display order.

    ``show`` also displays each figure (in the stage notebook). Raises ``FileNotFoundError``
    naming the missing input when an upstream stage has not run.
    """
    from satclip.stages.extract import GRID_STEP_DEG, grid_embeddings

    plots.use_style()
    results_dir = Path(params.paths.results)
    table = results_dir / "tables" / "downstream.csv"
    history_csv = results_dir / "plots" / "pretrain_history.csv"
    for path, stage in ((table, "tables"), (history_csv, "pretrain")):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the {stage} stage first")
    results = pd.read_csv(table, keep_default_na=False, na_values=[""])
    history = pd.read_csv(history_csv)
    lon, lat, grids = grid_embeddings(params)
    if not grids:
        raise FileNotFoundError("no land-grid embeddings: every encoder in extract.encoders was unavailable "
                                "(see results/metrics/extract.json)")
    out_dir = summary_dir(params)  # every input is read: only now are the old figures removed
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*"):  # a task or split dropped from params leaves no stale figure
        old.unlink()
    caption = run_caption(params, results)
    written = []

    fig = figures.embedding_maps(lon, lat, grids, step_deg=GRID_STEP_DEG, caption=run_caption(params) +
                                 f"; PCA of each encoder's embedding of {len(lon):,} land cells "
                                 f"({GRID_STEP_DEG:g} degree) to RGB")
    written.append(_save(fig, out_dir, "embedding_maps", show))

    tasks = list(dict.fromkeys(results["task"]))
    headline = [t for t in HEADLINE_TASKS if t in tasks]
    if headline:
        fig = figures.task_panels(results, headline, caption=caption,
                                  title="Headline tasks: every encoder and probe, random vs spatial split")
        written.append(_save(fig, out_dir, "headline", show))
    for task in (t for t in tasks if t not in headline):
        fig = figures.task_panels(results, [task], caption=caption)
        written.append(_save(fig, out_dir, f"task_{task}", show))

    split = spatial_split(list(dict.fromkeys(results["split"])))
    probe = "mlp" if "mlp" in set(results["probe"]) else str(results["probe"].iloc[0])
    if split is not None:
        fig = figures.score_heatmap(results, probe=probe, split=split, caption=caption)
        written.append(_save(fig, out_dir, "heatmap", show))

    metrics_file = results_dir / "metrics" / "pretrain.json"
    chance = json.loads(metrics_file.read_text()).get("chance_top1") if metrics_file.is_file() else None
    fig = plots.training_curves(history, chance_top1=chance, caption=run_caption(params) +
                                f"; batch {params.pretrain.trainer.batch_size}, validation within-batch retrieval")
    written.append(_save(fig, out_dir, "pretrain_curves", show))
    written += comparison_figures(params, out_dir, show)
    return written


def comparison_figures(params: Params, out_dir: Path, show: bool = False) -> list[FigureFile]:
    """``compare_<sweep>`` for every comparison table ``make compare`` wrote (none: an empty list)."""
    from satclip.compare import comparison_chart_of

    written = []
    for table_file in sorted((Path(params.paths.results) / "compare").glob("*.csv")):
        fig = comparison_chart_of(pd.read_csv(table_file), table_file.stem, table_file.with_suffix(".json"))
        written.append(_save(fig, out_dir, f"compare_{table_file.stem}", show))
    return written
