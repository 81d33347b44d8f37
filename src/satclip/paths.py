"""Where every stage reads and writes: the one place for the project's paths.

Two roots come from ``params.yaml`` (``paths.data``, ``paths.results``); every other location is
a name here. Stages, notebooks and tests ask a ``Layout`` instead of joining strings, and
``tests/stages/test_dvc_yaml.py`` checks that ``dvc.yaml`` declares the same paths.

::

    <cache>/raw/                           downloaded upstream files (satclip.data.cache: paths.cache,
                                           $SATCLIP_CACHE or ~/.cache/satclip; S2-100K and official
                                           checkpoints in huggingface_hub's cache)
    downloads.lock                         revisions and sha256 recorded on first download (committed)
    <data>/labels/<task>.parquet           one label table per downstream task
    <data>/pretrain/<set>/                 the prepared pretraining set (index.csv + images)
    <data>/checkpoints/pretrain/run-<r>/   the resumable training runs (run.json, last.ckpt, ...)
    <data>/embeddings/<encoder>/<task>.npy embeddings per encoder (+ meta.json, land_grid.npy;
                                           run-<r>/<task>.npy for the runs r >= 1 of satclip)
    <data>/stages/<stage>.json             the check stage's fingerprint of each stage (params, code)
    <results>/model/satclip.ckpt           the pretrained checkpoint (run 0; satclip-run<r>.ckpt)
    <results>/metrics/headline.json        the headline metrics (what `dvc exp show` lists)
    <results>/metrics/<stage>.json         every stage's metrics (`dvc metrics show <file>`)
    <results>/notebooks/<report>.ipynb     executed stage notebooks (+ .html reports)
    <results>/tables/                      downstream.{csv,md,tex}, tasks/<task>.csv
    <results>/predictions/<task>.parquet   test predictions (maps)
    <results>/figures/                     tasks/, summary/, localization_map
    <results>/compare/<sweep>.{csv,md,json} sweep comparisons
    <results>/index.html, README.md        the front pages
    <results>/logs/                        run logs and per-fit timings (untracked)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satclip.config import Params

MIRROR_ENV = "SATCLIP_DATA_MIRROR"  # a local, byte-exact mirror of the upstream files

#: stage name -> notebook stem (``notebooks/<stem>.ipynb``; report ``<results>/notebooks/<stem>.html``)
STAGE_NOTEBOOKS = {
    "download": "10_download",
    "pretrain": "20_pretrain",
    "extract": "30_extract",
    "evaluate": "40_evaluate",
    "tables": "50_tables",
    "figures": "90_figures",
}
#: stage name -> the params it reads (a section, a sub-section or one key): what its fingerprint
#: holds (``satclip.stages.check``) and what its report's parameter table lists
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "download": ("seed", "paths", "download"),
    "pretrain": ("seed", "runtime", "pretrain"),
    "extract": ("seed", "runtime", "pretrain.location", "pretrain.runs", "extract"),
    "evaluate": ("evaluate", "extract.encoders"),
    "tables": ("download.labels.tasks",),
    "figures": ("seed", "runtime", "download", "pretrain", "extract", "evaluate"),  # its report prints them all
}
NOTEBOOKS_DIR = Path("notebooks")
LAND_GRID = "land_grid"  # file stem of the land-grid embeddings beside the task embeddings


def stage_params(params: Params, stage: str) -> dict[str, Any]:
    """The dotted keys and values of the params ``stage`` reads (its ``STAGE_PARAMS`` entry)."""
    from satclip.schema import flatten, to_dict

    keys = STAGE_PARAMS[stage]
    return {k: v for k, v in flatten(to_dict(params)).items()
            if any(k == key or k.startswith(f"{key}.") for key in keys)}


@dataclass(frozen=True)
class Layout:
    """Every path of a run, under the two roots ``data`` and ``results``."""

    data: Path = Path("data")
    results: Path = Path("results")
    cache: Path | None = None  # the download cache; None: $SATCLIP_CACHE or ~/.cache/satclip

    @classmethod
    def of(cls, params: Params) -> Layout:
        """The layout of ``params.paths``."""
        cache = params.paths.cache
        return cls(Path(params.paths.data), Path(params.paths.results), Path(cache) if cache else None)

    # ---- downloads -------------------------------------------------------------------------
    @property
    def raw(self) -> Path:
        """Downloaded upstream files: ``<cache>/raw``, outside every DVC output (``satclip.data.cache``)."""
        from satclip.data.cache import raw_dir

        return raw_dir(self.cache)

    @property
    def download_lock(self) -> Path:
        """The download lock (``satclip.data.lock``): ``$SATCLIP_LOCK``, else ``downloads.lock`` here."""
        from satclip.data.lock import default_lock_path

        return default_lock_path()

    @property
    def feature_cache(self) -> Path:
        """Frozen-backbone features (``pretraining.feature_cache``): ``<cache>/features``."""
        from satclip.data.cache import cache_root

        return cache_root(self.cache) / "features"

    # ---- data ------------------------------------------------------------------------------

    @property
    def labels(self) -> Path:
        """The label tables' folder."""
        return self.data / "labels"

    def label_table(self, task: str) -> Path:
        """``<data>/labels/<task>.parquet``."""
        return self.labels / f"{task}.parquet"

    @property
    def pretrain_sets(self) -> Path:
        """Prepared pretraining sets' folder."""
        return self.data / "pretrain"

    def pretrain_set(self, name: str) -> Path:
        """``<data>/pretrain/<name>``."""
        return self.pretrain_sets / name

    @property
    def pretrain_runs(self) -> Path:
        """The resumable pretraining runs' folder (a persistent DVC output)."""
        return self.data / "checkpoints" / "pretrain"

    def run_dir(self, run: int = 0) -> Path:
        """``<data>/checkpoints/pretrain/run-<run>``: one resumable pretraining run."""
        return self.pretrain_runs / f"run-{int(run)}"

    @property
    def embeddings(self) -> Path:
        """The embeddings' folder."""
        return self.data / "embeddings"

    def encoder_dir(self, folder: str) -> Path:
        """``<data>/embeddings/<folder>``; ``folder`` must be a safe name (see ``extraction.store``)."""
        return self.embeddings / folder

    @property
    def land_grid_points(self) -> Path:
        """(M, 2) lon, lat of the land grid that every encoder embeds for the maps."""
        return self.embeddings / f"{LAND_GRID}.npy"

    @property
    def params_stamp(self) -> Path:
        """Written by ``satclip check --stamp`` when params.yaml is valid."""
        return self.data / "params.valid"

    @property
    def fingerprints(self) -> Path:
        """The check stage's output: one fingerprint per stage (``satclip.stages.check``)."""
        return self.data / "stages"

    def fingerprint(self, stage: str) -> Path:
        """``<data>/stages/<stage>.json``: the params and code ``stage`` depends on (its dvc.yaml dep)."""
        return self.fingerprints / f"{stage}.json"

    # ---- results ---------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        """The pretrained checkpoints' folder (one per pretraining run)."""
        return self.results / "model"

    @property
    def checkpoint(self) -> Path:
        """The pretrained checkpoint of run 0 (best validation loss)."""
        return self.run_checkpoint(0)

    def run_checkpoint(self, run: int) -> Path:
        """The best checkpoint of pretraining run ``run`` (``satclip.ckpt`` for run 0)."""
        return self.model_dir / ("satclip.ckpt" if run == 0 else f"satclip-run{int(run)}.ckpt")

    @property
    def history(self) -> Path:
        """Per-epoch pretraining history."""
        return self.results / "plots" / "pretrain_history.csv"

    @property
    def metrics_dir(self) -> Path:
        """Tracked metrics' folder."""
        return self.results / "metrics"

    def metrics(self, stage: str) -> Path:
        """``<results>/metrics/<stage>.json``."""
        return self.metrics_dir / f"{stage}.json"

    @property
    def notebooks(self) -> Path:
        """Executed stage notebooks and their HTML reports."""
        return self.results / "notebooks"

    def report(self, stage: str, task: str | None = None) -> Path:
        """The executed notebook of ``stage`` (``.ipynb``; its HTML report sits beside it)."""
        stem = STAGE_NOTEBOOKS[stage] + (f"_{task}" if task else "")
        return self.notebooks / f"{stem}.ipynb"

    @property
    def tables(self) -> Path:
        """Joined tables' folder."""
        return self.results / "tables"

    def task_table(self, task: str) -> Path:
        """``<results>/tables/tasks/<task>.csv`` (tidy rows of one task)."""
        return self.tables / "tasks" / f"{task}.csv"

    def task_scores(self, task: str) -> Path:
        """``<results>/tables/tasks/<task>.scores.csv``: one row per fit (seed, run) and metric."""
        return self.tables / "tasks" / f"{task}.scores.csv"

    @property
    def scores_csv(self) -> Path:
        """Every fit's scores, all tasks (the verdict's input)."""
        return self.tables / "scores.csv"

    @property
    def verdict_csv(self) -> Path:
        """The pretrained encoder against its baselines: paired differences with intervals."""
        return self.tables / "verdict.csv"

    @property
    def downstream_csv(self) -> Path:
        """All tasks' tidy results."""
        return self.tables / "downstream.csv"

    def predictions(self, task: str) -> Path:
        """``<results>/predictions/<task>.parquet``."""
        return self.results / "predictions" / f"{task}.parquet"

    @property
    def task_figures(self) -> Path:
        """Per-task figures of the evaluate stage."""
        return self.results / "figures" / "tasks"

    @property
    def localization_map(self) -> Path:
        """File stem of the image-localization map (``.png`` and ``.pdf``)."""
        return self.results / "figures" / "localization_map"

    @property
    def summary_figures(self) -> Path:
        """The figures stage's cross-task figures."""
        return self.results / "figures" / "summary"

    @property
    def compare(self) -> Path:
        """Sweep comparisons written by ``satclip compare``."""
        return self.results / "compare"

    @property
    def index_html(self) -> Path:
        """The results' front page."""
        return self.results / "index.html"

    @property
    def readme(self) -> Path:
        """The generated README of the results folder."""
        return self.results / "README.md"

    @property
    def readme_html(self) -> Path:
        """The generated README rendered as HTML (the index links it)."""
        return self.results / "README.html"

    @property
    def logs(self) -> Path:
        """Run logs: timings of each fit, what a stage printed (untracked, not a DVC output)."""
        return self.results / "logs"

    @property
    def bench(self) -> Path:
        """Benchmark results (``make bench``)."""
        return self.results / "bench"


def notebook_template(stage: str) -> Path:
    """The committed notebook template of ``stage``."""
    return NOTEBOOKS_DIR / f"{STAGE_NOTEBOOKS[stage]}.ipynb"


def mirror_of(params: Params) -> str | None:
    """The local mirror folder: ``paths.mirror`` if set, else ``$SATCLIP_DATA_MIRROR`` (or None)."""
    return params.paths.mirror or os.environ.get(MIRROR_ENV) or None


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` itself or somewhere below it."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    return resolved == base or base in resolved.parents
