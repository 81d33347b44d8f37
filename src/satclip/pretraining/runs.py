"""Resumable pretraining runs, one folder each (``Layout.run_dir(r)``).

- ``run.json``: the hash of the run's configuration, whether it finished, its final metrics;
- ``last.ckpt`` (every epoch), ``best.ckpt`` (lowest validation loss), ``history.csv`` (per epoch).

``train(params)`` trains or resumes the ``pretrain.runs`` runs (run r with ``run_seed(seed, r)``)
and writes ``Layout.run_checkpoint(r)``, ``Layout.history`` and ``Layout.metrics("pretrain")``.
A finished run of the same configuration is reused, not retrained; an unfinished one resumes
from ``last.ckpt``.

Checkpoints are checked before they are used (an intact zip archive that ``torch.load`` reads):
an unreadable ``last.ckpt`` falls back to ``best.ckpt`` (training is a function of seed, epoch
and batch, so resuming from an older epoch ends with the same weights), else the run restarts
from scratch; a finished run with an unreadable checkpoint is trained again. Each fallback is
logged as a warning naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from satclip.config import Params
from satclip.data.pretrain_sets import open_pretrain_set
from satclip.encoders.pretrained import CheckpointError, verify_checkpoint_file
from satclip.io import atomic_path, write_json
from satclip.paths import Layout
from satclip.pretraining.feature_cache import data_digest
from satclip.pretraining.training import PretrainDataModule, SatCLIPModule
from satclip.streams import TrainStream, stream_seed

#: per-epoch columns of ``history.csv``; metric names are ``<split>_<metric>``
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_median_km", "scale",
                   "epoch_seconds"]

log = logging.getLogger(__name__)


def run_hash(params: Params) -> str:
    """Hash of everything that determines the trained weights (pretrain section, seed, data)."""
    pretrain = asdict(params.pretrain)
    pretrain.pop("runs")  # how many runs there are does not change any one of them
    key = {"pretrain": pretrain, "seed": params.seed, "download": asdict(params.download)}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


PROGRESS_SECONDS = 60.0   # a progress line within an epoch at most this often (long epochs on big sets)
LOG_EVERY_N_STEPS = 10    # rows of the Lightning CSV log (logs/version_<k>/metrics.csv in the run folder)


class EpochHistory(Callback):
    """Append one row per finished epoch to ``history.csv`` (kept across resumes); log progress lines.

    The run log (``satclip.runlog``, echoed to the console) gets one line per epoch and, within an
    epoch that takes longer than ``PROGRESS_SECONDS``, a line with the batch, the loss and the rate.
    """

    def __init__(self, path: Path, label: str = "") -> None:
        """Write to ``path``; log each epoch's line as ``label`` (e.g. ``run 1``)."""
        self.path = path
        self.label = label
        self.started = self.reported = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self.started = self.reported = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        """A progress line when ``PROGRESS_SECONDS`` have passed since the last one."""
        now = time.perf_counter()
        if not trainer.is_global_zero or now - self.reported < PROGRESS_SECONDS:
            return
        self.reported = now
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        log.info("%sepoch %d/%d, batch %d/%s: train loss %.3f (%.2f batches/s)",
                 f"{self.label}: " if self.label else "", trainer.current_epoch + 1, trainer.max_epochs,
                 batch_idx + 1, trainer.num_training_batches, float(loss), (batch_idx + 1) / (now - self.started))

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Append (or replace, after a resume) the epoch's row."""
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch}
        for col in HISTORY_COLUMNS[1:-1]:
            row[col] = float(m[col]) if col in m else float("nan")
        row["epoch_seconds"] = time.perf_counter() - self.started  # training + validation
        old = pd.read_csv(self.path) if self.path.is_file() else pd.DataFrame(columns=HISTORY_COLUMNS)
        old = old[old["epoch"] < trainer.current_epoch]  # a resumed epoch replaces its old row
        table = pd.concat([old, pd.DataFrame([row])], ignore_index=True) if len(old) else pd.DataFrame([row])
        with atomic_path(self.path) as tmp:
            table.to_csv(tmp, index=False)
        log.info("%sepoch %d/%d: train loss %.3f, val loss %.3f, val top-1 %.1f %%, median %.0f km (%.0f s)",
                 f"{self.label}: " if self.label else "", trainer.current_epoch + 1, trainer.max_epochs,
                 row["train_loss"], row["val_loss"], 100 * row["val_top1"], row["val_median_km"],
                 row["epoch_seconds"])


def launch_rank() -> int:
    """Global rank from the launcher's environment (torchrun, SLURM); 0 for a single process."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def checkpoint_epoch(path: Path) -> int:
    """The epoch a readable Lightning checkpoint was saved at (0-based, as in ``history.csv``).

    Raises:
        CheckpointError: missing, not an intact zip archive, not loadable by ``torch.load``, or
            not a Lightning checkpoint; the message names the file.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    verify_checkpoint_file(path)
    try:  # our own file: pickled Lightning state (optimizer, callbacks) is expected
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # any failure to load means the file cannot be resumed from
        raise CheckpointError(f"{path}: cannot be loaded ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict' or 'epoch')")
    return int(ckpt["epoch"])


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be used (without the file name), or None."""
    try:
        checkpoint_epoch(path)
    except CheckpointError as err:
        return str(err).removeprefix(f"{path}: ")
    return None


def prepare_run_dir(run_dir: Path, digest: str) -> tuple[str, Path | None]:
    """Decide how this run starts: ``"done"``, ``"resume"`` or ``"fresh"`` (the folder is emptied).

    ``done``: a finished run of the same configuration is there (e.g. trained outside the
    notebook under torchrun) and its checkpoints are readable: they are reused. ``resume``: an
    unfinished run of the same configuration continues from ``last.ckpt``, or from ``best.ckpt``
    when ``last.ckpt`` is unreadable (same result: training is deterministic per seed, epoch and
    batch). Otherwise ``fresh``. Every fallback is logged as a warning naming the file. Every
    rank decides the same way; only rank 0 changes the folder. Delete the folder to retrain
    from scratch.

    Returns:
        (mode, checkpoint to resume from: ``None`` unless mode is ``"resume"``).
    """
    state_file = run_dir / "run.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    last, best = run_dir / "last.ckpt", run_dir / "best.ckpt"
    same = state.get("hash") == digest and (last.is_file() or best.is_file())
    rank0 = launch_rank() == 0
    mode, resume_from = ("resume", last) if same else ("fresh", None)
    if same and state.get("finished", False) and "metrics" in state:
        bad = [(p, why) for p in (last, best) if (p == last or p.is_file()) and (why := _problem(p))]
        if not bad:
            return "done", None
        if rank0:
            log.warning("%s unreadable (%s); the finished run cannot be reused: restarting the run from scratch",
                        *bad[0])
        mode, resume_from = "fresh", None
    elif same and (why := _problem(last)):
        best_problem = _problem(best)
        if best_problem is None:
            resume_from = best
            if rank0:
                log.warning("%s unreadable (%s); resuming from best.ckpt (epoch %d)", last, why,
                            checkpoint_epoch(best))
                last.unlink(missing_ok=True)  # Lightning writes a new one after the next epoch
        else:
            mode, resume_from = "fresh", None
            if rank0:
                log.warning("%s unreadable (%s) and %s unreadable (%s); restarting the run from scratch",
                            last, why, best, best_problem)
    if rank0:
        if mode == "fresh" and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json({"hash": digest, "finished": False}, state_file)
    return mode, resume_from


def build_trainer(params: Params, run_dir: Path, callbacks: list[Callback] | None = None,
                  label: str = "") -> L.Trainer:
    """A Lightning Trainer from ``pretrain.trainer`` (accelerator, devices, strategy, nodes...)."""
    t = params.pretrain.trainer
    # run.json sits in the checkpoint folder on purpose; Lightning's notices are noise here
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message="The number of training batches .* is smaller than the logging interval")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    best = ModelCheckpoint(dirpath=run_dir, filename="best", monitor="val_loss", mode="min",
                           save_top_k=1, enable_version_counter=False)
    # last.ckpt every epoch from a checkpoint of its own: since Lightning 2.6, `save_last=True`
    # writes it only at a step where a top-k checkpoint is saved too (val_loss improved), so a
    # resume after a plateau went back to the best epoch and trained again from there
    last = ModelCheckpoint(dirpath=run_dir, filename="last", save_top_k=1, every_n_epochs=1,
                           enable_version_counter=False)
    return L.Trainer(
        max_epochs=t.epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, accumulate_grad_batches=t.accumulate_grad_batches,
        deterministic=True, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        # Lightning's CSV log: <run>/logs/version_<k>/metrics.csv, one version per start or resume
        logger=CSVLogger(save_dir=run_dir, name="logs"), log_every_n_steps=LOG_EVERY_N_STEPS,
        callbacks=[best, last, EpochHistory(run_dir / "history.csv", label), *(callbacks or [])],
    )


def final_metrics(history: pd.DataFrame, data: PretrainDataModule, batch_size: int, world_size: int = 1) -> dict:
    """The run's metrics from its last epoch (names ``<split>_<metric>``); no wall-clock times."""
    final = history.iloc[-1]
    return {
        "val_loss": float(final["val_loss"]), "val_top1": float(final["val_top1"]),
        "val_top5": float(final["val_top5"]), "val_median_km": float(final["val_median_km"]),
        "epochs": int(final["epoch"]) + 1, "train_pairs": len(data.train_idx), "val_pairs": len(data.val_idx),
        # top-1 is scored within each rank's validation batch: under DDP a rank holds 1/world of them
        "chance_top1": 1.0 / min(batch_size, math.ceil(len(data.val_idx) / world_size)),
    }


def run_seed(seed: int, run: int) -> int:
    """The seed of pretraining run ``run``: ``seed`` itself for run 0, else one derived from it.

    Run r >= 1 uses ``stream_seed(seed, TrainStream.PRETRAIN_RUN, r)`` folded into [0, 2**31)
    (Lightning's seed range). Everything random in a run (validation split, initialization,
    shuffling, augmentation, dropout) follows its seed, so the runs are independent replicates.
    """
    return int(seed) if run == 0 else stream_seed(seed, TrainStream.PRETRAIN_RUN, run) % 2**31


def run_params(params: Params, run: int) -> Params:
    """``params`` with ``seed`` replaced by the seed of pretraining run ``run``."""
    return replace(params, seed=run_seed(params.seed, run))


def _adopt_old_layout(layout: Layout) -> None:
    """Move a single run of the old layout (files directly in ``pretrain_runs``) into ``run-0``."""
    root, first = layout.pretrain_runs, layout.run_dir(0)
    if (root / "run.json").is_file() and not first.exists() and launch_rank() == 0:
        first.mkdir(parents=True)
        for name in ("run.json", "last.ckpt", "best.ckpt", "history.csv"):
            if (root / name).is_file():
                (root / name).rename(first / name)
        log.info("moved the run in %s to %s (one folder per pretraining run)", root, first)


def train_run(params: Params, run: int = 0, callbacks: list[Callback] | None = None) -> dict:
    """Train (or resume, or reuse) pretraining run ``run`` of ``params``; return its metrics.

    The run lives in ``Layout.run_dir(run)`` and trains with ``run_seed(params.seed, run)``; its
    best checkpoint is copied to ``Layout.run_checkpoint(run)``. ``callbacks`` are extra Lightning
    callbacks (tests use them to interrupt a run). Ranks other than 0 return an empty dict.
    """
    layout = Layout.of(params)
    run_dir = layout.run_dir(run)
    params = run_params(params, run)
    torch.set_num_threads(params.runtime.threads)
    L.seed_everything(params.seed, workers=True, verbose=False)
    cfg = params.pretrain
    dataset = open_pretrain_set(cfg.dataset, layout.pretrain_set(cfg.dataset), params.download.s2_100k.on_corrupt)
    data = PretrainDataModule(dataset, cfg, params.seed)
    digest = run_hash(params)
    mode, resume_from = prepare_run_dir(run_dir, digest)
    if mode == "done":
        metrics = json.loads((run_dir / "run.json").read_text())["metrics"]
        log.info("run %d (seed %d): finished earlier with the same configuration, reused", run, params.seed)
    else:
        hparams = asdict(cfg)
        hparams.pop("runs")  # not a property of one run
        module = SatCLIPModule(hparams, seed=params.seed)
        if cfg.image.backbone == "rcf":  # filters from this run's training images (a resume restores the same)
            module.model.visual.backbone.fit(data.train_set, stream_seed(params.seed, TrainStream.RCF_FILTERS))
        if cfg.feature_cache.enabled:
            data.use_feature_cache(module.model, layout.feature_cache, data_digest(layout.pretrain_set(cfg.dataset)))
        log.info("run %d (seed %d): %s", run, params.seed, {"fresh": "training", "resume": f"resuming from {resume_from}"}[mode])
        trainer = build_trainer(params, run_dir, callbacks, label=f"run {run}")
        trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from is not None else None)
        if not trainer.is_global_zero:
            return {}
        metrics = final_metrics(pd.read_csv(run_dir / "history.csv"), data, cfg.trainer.batch_size,
                                trainer.world_size)
        write_json({"hash": digest, "finished": True, "metrics": metrics}, run_dir / "run.json")
    best = run_dir / "best.ckpt"
    with atomic_path(layout.run_checkpoint(run)) as tmp:
        shutil.copyfile(best if best.is_file() else run_dir / "last.ckpt", tmp)
    return metrics


def _train_job(params: Params, run: int) -> dict:
    """``train_run`` in a worker process (its logs go to the run log, else to stderr)."""
    from satclip.runlog import to_run_log

    if to_run_log() is None:
        logging.basicConfig(level=logging.WARNING)
    return train_run(params, run)


def _exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """Worker initializer: end this process when ``parent`` (the stage) is gone.

    A killed stage (``kill``, a CI timeout) leaves its worker processes alive otherwise: they go on
    training and writing the run directories that a resumed stage reads and writes too.
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _side_by_side(params: Params, callbacks: list[Callback] | None) -> bool:
    """Whether the runs may train in parallel processes: CPU, one device, not under a launcher."""
    t = params.pretrain.trainer
    single = t.accelerator == "cpu" and str(t.devices) == "1" and t.num_nodes == 1 and t.strategy == "auto"
    return (params.runtime.pretrain_workers > 1 and params.pretrain.runs > 1 and not callbacks and single
            and "RANK" not in os.environ and "SLURM_PROCID" not in os.environ)


def summarize_runs(per_run: list[dict]) -> dict:
    """The stage's metrics: per-run metrics, their mean (top level) and sample std (``std``)."""
    out: dict = {"runs": len(per_run)}
    numeric = [k for k, v in per_run[0].items() if isinstance(v, (int, float))]
    for key in numeric:
        values = np.array([m[key] for m in per_run], dtype=np.float64)
        out[key] = float(values.mean()) if key.startswith("val_") else per_run[0][key]
    out["std"] = {k: float(np.std([m[k] for m in per_run], ddof=1)) if len(per_run) > 1 else None
                  for k in numeric if k.startswith("val_")}
    out["run"] = {str(r): m for r, m in enumerate(per_run)}
    return out


def train(params: Params, callbacks: list[Callback] | None = None) -> dict:
    """Train (or resume, or reuse) the ``pretrain.runs`` runs of ``params``; write the stage's outputs.

    Writes each run's checkpoint (``Layout.run_checkpoint``), the joined ``Layout.history`` (a
    ``run`` column first) and ``Layout.metrics("pretrain")`` (``summarize_runs``); returns the
    latter. On CPU the runs train side by side in ``runtime.pretrain_workers`` processes (the same
    weights as one after the other). Ranks other than 0 return an empty dict.
    """
    layout = Layout.of(params)
    _adopt_old_layout(layout)
    runs = list(range(params.pretrain.runs))
    if _side_by_side(params, callbacks):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        workers = min(params.runtime.pretrain_workers, len(runs))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            per_run = list(pool.map(_train_job, [params] * len(runs), runs))
    else:
        per_run = [train_run(params, r, callbacks) for r in runs]
    if launch_rank() != 0 or not all(per_run):
        return {}
    for stale in layout.model_dir.glob("satclip-run*.ckpt"):  # runs of a config with more runs
        if stale not in {layout.run_checkpoint(r) for r in runs}:
            stale.unlink()
    histories = [pd.read_csv(layout.run_dir(r) / "history.csv").assign(run=r) for r in runs]
    history = pd.concat(histories, ignore_index=True)
    with atomic_path(layout.history) as tmp:
        history[["run", *HISTORY_COLUMNS]].to_csv(tmp, index=False)
    metrics = summarize_runs(per_run)
    write_json(metrics, layout.metrics("pretrain"))
    return metrics
