"""A resumable pretraining run in a folder (``Layout.run_dir``).

- ``run.json``: the hash of the run's configuration, whether it finished, its final metrics;
- ``last.ckpt`` (every epoch), ``best.ckpt`` (lowest validation loss), ``history.csv`` (per epoch).

``train(params)`` trains or resumes a run and copies its results to ``Layout.checkpoint``,
``Layout.history`` and ``Layout.metrics("pretrain")``. A finished run of the same configuration
is reused, not retrained; an unfinished one resumes from ``last.ckpt``.

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
import os
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from satclip.config import Params
from satclip.data.pretrain_sets import open_pretrain_set
from satclip.encoders.pretrained import CheckpointError, verify_checkpoint_file
from satclip.io import atomic_path, write_json
from satclip.paths import Layout
from satclip.pretraining.training import PretrainDataModule, SatCLIPModule

#: per-epoch columns of ``history.csv``; metric names are ``<split>_<metric>``
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_median_km", "scale",
                   "epoch_seconds"]

log = logging.getLogger(__name__)


def run_hash(params: Params) -> str:
    """Hash of everything that determines the trained weights (pretrain section, seed, data)."""
    key = {"pretrain": asdict(params.pretrain), "seed": params.seed, "download": asdict(params.download)}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class EpochHistory(Callback):
    """Append one row per finished epoch to ``history.csv`` (kept across resumes)."""

    def __init__(self, path: Path) -> None:
        """Write to ``path``."""
        self.path = path
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Start the epoch's clock."""
        self.started = time.perf_counter()

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


def build_trainer(params: Params, run_dir: Path, callbacks: list[Callback] | None = None) -> L.Trainer:
    """A Lightning Trainer from ``pretrain.trainer`` (accelerator, devices, strategy, nodes...)."""
    t = params.pretrain.trainer
    # run.json sits in the checkpoint folder on purpose; Lightning's notices are noise here
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    ckpt = ModelCheckpoint(dirpath=run_dir, filename="best", monitor="val_loss", mode="min",
                           save_last=True, save_top_k=1, enable_version_counter=False)
    return L.Trainer(
        max_epochs=t.epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, accumulate_grad_batches=t.accumulate_grad_batches,
        deterministic=True, logger=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[ckpt, EpochHistory(run_dir / "history.csv"), *(callbacks or [])],
    )


def final_metrics(history: pd.DataFrame, data: PretrainDataModule, batch_size: int) -> dict:
    """The run's metrics from its last epoch (names ``<split>_<metric>``); no wall-clock times."""
    final = history.iloc[-1]
    return {
        "val_loss": float(final["val_loss"]), "val_top1": float(final["val_top1"]),
        "val_top5": float(final["val_top5"]), "val_median_km": float(final["val_median_km"]),
        "epochs": int(final["epoch"]) + 1, "train_pairs": len(data.train_idx), "val_pairs": len(data.val_idx),
        "chance_top1": 1.0 / min(batch_size, len(data.val_idx)),
    }


def train(params: Params, callbacks: list[Callback] | None = None) -> dict:
    """Train (or resume, or reuse) the run of ``params``; write its outputs; return its metrics.

    ``callbacks`` are extra Lightning callbacks (tests use them to interrupt a run). Ranks other
    than 0 return an empty dict.
    """
    torch.set_num_threads(params.runtime.threads)
    L.seed_everything(params.seed, workers=True, verbose=False)
    layout = Layout.of(params)
    cfg = params.pretrain
    run_dir = layout.run_dir
    dataset = open_pretrain_set(cfg.dataset, layout.pretrain_set(cfg.dataset), params.download.s2_100k.on_corrupt)
    data = PretrainDataModule(dataset, cfg, params.seed)
    digest = run_hash(params)
    mode, resume_from = prepare_run_dir(run_dir, digest)
    if mode == "done":
        metrics = json.loads((run_dir / "run.json").read_text())["metrics"]
    else:
        module = SatCLIPModule(asdict(cfg), seed=params.seed)
        if cfg.feature_cache.enabled:
            data.use_feature_cache(module.model)
        trainer = build_trainer(params, run_dir, callbacks)
        trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from is not None else None)
        if not trainer.is_global_zero:
            return {}
        metrics = final_metrics(pd.read_csv(run_dir / "history.csv"), data, cfg.trainer.batch_size)
        write_json({"hash": digest, "finished": True, "metrics": metrics}, run_dir / "run.json")
    best = run_dir / "best.ckpt"
    with atomic_path(layout.checkpoint) as tmp:
        shutil.copyfile(best if best.is_file() else run_dir / "last.ckpt", tmp)
    with atomic_path(layout.history) as tmp:
        shutil.copyfile(run_dir / "history.csv", tmp)
    write_json(metrics, layout.metrics("pretrain"))
    return metrics
