"""A resumable pretraining run in a folder (``Layout.run_dir``).

- ``run.json``: the hash of the run's configuration, whether it finished, its final metrics;
- ``last.ckpt`` (every epoch), ``best.ckpt`` (lowest validation loss), ``history.csv`` (per epoch).

``train(params)`` trains or resumes a run and copies its results to ``Layout.checkpoint``,
``Layout.history`` and ``Layout.metrics("pretrain")``. A finished run of the same configuration
is reused, not retrained; an unfinished one resumes from ``last.ckpt``.
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
from satclip.io import atomic_path, write_json
from satclip.paths import Layout
from satclip.pretraining.training import PretrainDataModule, SatCLIPModule

#: per-epoch columns of ``history.csv``; metric names are ``<split>_<metric>``
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_median_km", "scale",
                   "epoch_seconds"]


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


def prepare_run_dir(run_dir: Path, digest: str) -> str:
    """Decide how this run starts: ``"done"``, ``"resume"`` or ``"fresh"`` (the folder is emptied).

    ``done``: a finished run of the same configuration is there (e.g. trained outside the
    notebook under torchrun): its checkpoints are reused. ``resume``: an unfinished run of the
    same configuration continues from ``last.ckpt``. Every rank decides the same way; only
    rank 0 changes the folder. Delete the folder to retrain from scratch.
    """
    state_file = run_dir / "run.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    same = state.get("hash") == digest and (run_dir / "last.ckpt").is_file()
    if same and state.get("finished", False) and "metrics" in state:
        return "done"
    mode = "resume" if same else "fresh"
    if launch_rank() == 0:
        if mode == "fresh" and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json({"hash": digest, "finished": False}, state_file)
    return mode


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
    mode = prepare_run_dir(run_dir, digest)
    if mode == "done":
        metrics = json.loads((run_dir / "run.json").read_text())["metrics"]
    else:
        module = SatCLIPModule(asdict(cfg), seed=params.seed)
        if cfg.feature_cache.enabled:
            data.use_feature_cache(module.model)
        trainer = build_trainer(params, run_dir, callbacks)
        trainer.fit(module, datamodule=data, ckpt_path=str(run_dir / "last.ckpt") if mode == "resume" else None)
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
