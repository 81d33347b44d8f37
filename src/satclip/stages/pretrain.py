"""The pretrain stage: train SatCLIP from the ``pretrain`` section, resumably.

Layout (``<data>/checkpoints/pretrain`` persists across DVC runs so an interrupted run resumes):

- ``run.json``: the hash of the run's configuration and whether it finished;
- ``last.ckpt`` (every epoch), ``best.ckpt`` (lowest validation loss), ``history.csv`` (per epoch).

Outputs: ``<results>/model/satclip.ckpt`` (the best checkpoint), ``<results>/metrics/pretrain.json``
and ``<results>/plots/pretrain_history.csv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from satclip.config import Params
from satclip.data.pretrain_sets import open_pretrain_set
from satclip.io import atomic_path, write_json
from satclip.stages.download import data_paths
from satclip.training import PretrainDataModule, SatCLIPModule

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_median_km", "logit_scale",
                   "epoch_seconds"]


@dataclass
class PretrainPaths:
    """Where the stage reads and writes."""

    dataset: Path
    run_dir: Path
    checkpoint: Path
    metrics: Path
    history: Path


def pretrain_paths(params: Params) -> PretrainPaths:
    """The stage's paths under ``paths.data`` and ``paths.results``."""
    results = Path(params.paths.results)
    return PretrainPaths(
        dataset=data_paths(params)["pretrain"] / params.pretrain.dataset,
        run_dir=Path(params.paths.data) / "checkpoints" / "pretrain",
        checkpoint=results / "model" / "satclip.ckpt",
        metrics=results / "metrics" / "pretrain.json",
        history=results / "plots" / "pretrain_history.csv",
    )


def run_hash(params: Params) -> str:
    """Hash of everything that determines the trained weights (pretrain section, seed, data)."""
    key = {"pretrain": asdict(params.pretrain), "seed": params.seed, "download": asdict(params.download)}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class EpochHistory(Callback):
    """Append one row per finished epoch to ``history.csv`` (kept across resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
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


def _launch_rank() -> int:
    """Global rank from the launcher's environment (torchrun, SLURM); 0 for a single process."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def _prepare_run_dir(paths: PretrainPaths, digest: str) -> str:
    """Decide how this run starts: ``"done"``, ``"resume"`` or ``"fresh"`` (the folder is emptied).

    ``done``: a finished run of the same configuration is there (e.g. trained outside the
    notebook under torchrun): its checkpoints are reused. ``resume``: an unfinished run of the
    same configuration continues from ``last.ckpt``. Every rank decides the same way; only
    rank 0 changes the folder. Delete the folder to retrain from scratch.
    """
    state_file = paths.run_dir / "run.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    same = state.get("hash") == digest and (paths.run_dir / "last.ckpt").is_file()
    if same and state.get("finished", False) and "metrics" in state:
        return "done"
    mode = "resume" if same else "fresh"
    if _launch_rank() == 0:
        if mode == "fresh" and paths.run_dir.exists():
            shutil.rmtree(paths.run_dir)
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        write_json({"hash": digest, "finished": False}, state_file)
    return mode


def build_trainer(params: Params, paths: PretrainPaths, callbacks: list[Callback] | None = None) -> L.Trainer:
    """A Lightning Trainer from ``pretrain.trainer`` (accelerator, devices, strategy, nodes...)."""
    t = params.pretrain.trainer
    # run.json sits in the checkpoint folder on purpose; Lightning's notices are noise here
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    ckpt = ModelCheckpoint(dirpath=paths.run_dir, filename="best", monitor="val_loss", mode="min",
                           save_last=True, save_top_k=1, enable_version_counter=False)
    return L.Trainer(
        max_epochs=t.epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
        num_nodes=t.num_nodes, precision=t.precision, accumulate_grad_batches=t.accumulate_grad_batches,
        deterministic=True, logger=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[ckpt, EpochHistory(paths.run_dir / "history.csv"), *(callbacks or [])],
    )


def run_pretrain(params: Params, callbacks: list[Callback] | None = None) -> dict:
    """Train (or resume) and write the checkpoint, metrics and history; return the metrics.

    A finished run of the same configuration in the run folder is reused, not retrained.
    ``callbacks`` are extra Lightning callbacks (tests use them to interrupt a run).
    """
    torch.set_num_threads(params.runtime.threads)
    L.seed_everything(params.seed, workers=True, verbose=False)
    paths = pretrain_paths(params)
    cfg = params.pretrain
    dataset = open_pretrain_set(cfg.dataset, paths.dataset, params.download.s2_100k.on_corrupt)
    data = PretrainDataModule(dataset, cfg, params.seed)
    digest = run_hash(params)
    mode = _prepare_run_dir(paths, digest)
    if mode == "done":
        metrics = json.loads((paths.run_dir / "run.json").read_text())["metrics"]
    else:
        module = SatCLIPModule(asdict(cfg), seed=params.seed)
        if cfg.feature_cache.enabled:
            data.use_feature_cache(module.model)
        trainer = build_trainer(params, paths, callbacks)
        trainer.fit(module, datamodule=data, ckpt_path=str(paths.run_dir / "last.ckpt") if mode == "resume" else None)
        if not trainer.is_global_zero:
            return {}
        history = pd.read_csv(paths.run_dir / "history.csv")
        final = history.iloc[-1]
        metrics = {
            "val_loss": float(final["val_loss"]), "val_top1": float(final["val_top1"]),
            "val_top5": float(final["val_top5"]), "median_km": float(final["val_median_km"]),
            "epochs": int(final["epoch"]) + 1, "train_seconds": round(float(history["epoch_seconds"].sum()), 1),
            "train_pairs": len(data.train_idx), "val_pairs": len(data.val_idx),
            "chance_top1": 1.0 / min(cfg.trainer.batch_size, len(data.val_idx)),
        }
        write_json({"hash": digest, "finished": True, "metrics": metrics}, paths.run_dir / "run.json")
    best = paths.run_dir / "best.ckpt"
    with atomic_path(paths.checkpoint) as tmp:
        shutil.copyfile(best if best.is_file() else paths.run_dir / "last.ckpt", tmp)
    paths.history.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(paths.run_dir / "history.csv", paths.history)
    write_json(metrics, paths.metrics)
    return metrics


# --------------------------------------------------------------------------------------------
# What the report shows
# --------------------------------------------------------------------------------------------

def load_module(checkpoint: str | os.PathLike) -> SatCLIPModule:
    """A trained ``SatCLIPModule`` from a checkpoint of this stage, on the CPU, in eval mode."""
    return SatCLIPModule.load_from_checkpoint(str(checkpoint), map_location="cpu").eval()


@torch.no_grad()
def embed_points(module: SatCLIPModule, lon, lat, batch: int = 65536) -> np.ndarray:
    """Location embeddings (N, d) (normalized, float32) of points (lon, lat)."""
    coords = torch.as_tensor(np.stack([lon, lat], axis=1), dtype=torch.float32)
    out = [module.model.encode_location(coords[i:i + batch]).float() for i in range(0, len(coords), batch)]
    return torch.cat(out).numpy()


@torch.no_grad()
def retrieval_topk(module: SatCLIPModule, dataset, indices, k: int = 5):
    """For dataset items ``indices``: images, true (n, 2) points, top-k candidate points (n, k, 2)."""
    from satclip.augment import eval_view

    items = [dataset[int(i)] for i in indices]
    images = torch.stack([it["image"] for it in items])
    img = module.model.encode_image(eval_view(images, module.cfg.augment))  # (n, d)
    cand = module.model.encode_location(module.candidates)  # (M, d)
    top = (img @ cand.T).topk(k, dim=1).indices  # (n, k)
    true = np.stack([it["point"].numpy() for it in items])
    return [im.numpy() for im in images], true, module.candidates[top].numpy()


def land_centroid(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """The spherical centroid (normalized mean of unit vectors) of points, as (lon, lat) degrees."""
    lo, la = np.radians(lon), np.radians(lat)
    v = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1).mean(axis=0)
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arctan2(v[1], v[0]))), float(np.degrees(np.arcsin(v[2])))


@torch.no_grad()
def localization_errors(module: SatCLIPModule, dataset, indices, batch: int = 512) -> pd.DataFrame:
    """Image localization: each image's best candidate location (Fibonacci land grid) and the error.

    Returns one row per image: true ``lon, lat``, predicted ``pred_lon, pred_lat``, the
    great-circle error ``km`` and the error ``baseline_km`` of always predicting the land centroid.
    """
    from satclip.augment import eval_view
    from satclip.data.sampling import great_circle_km

    cand = module.model.encode_location(module.candidates)  # (M, d)
    cand_pts = module.candidates.numpy()
    c_lon, c_lat = land_centroid(cand_pts[:, 0], cand_pts[:, 1])
    rows = []
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), batch):
        items = [dataset[i] for i in indices[start:start + batch]]
        images = eval_view(torch.stack([it["image"] for it in items]), module.cfg.augment)
        best = (module.model.encode_image(images) @ cand.T).argmax(dim=1).numpy()  # (B,)
        true = np.stack([it["point"].numpy() for it in items]).astype(np.float64)
        pred = cand_pts[best].astype(np.float64)
        rows.append(pd.DataFrame({
            "lon": true[:, 0], "lat": true[:, 1], "pred_lon": pred[:, 0], "pred_lat": pred[:, 1],
            "km": great_circle_km(pred[:, 0], pred[:, 1], true[:, 0], true[:, 1]),
            "baseline_km": great_circle_km(c_lon, c_lat, true[:, 0], true[:, 1])}))
    return pd.concat(rows, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.pretrain [params.yaml]``: train outside the notebook.

    For launchers that start one process per GPU (``torchrun``, SLURM ``srun``) with
    ``pretrain.trainer.strategy: ddp``; afterwards ``dvc commit pretrain`` records the outputs.
    """
    import sys

    from satclip.config import load_params

    args = sys.argv[1:] if argv is None else argv
    metrics = run_pretrain(load_params(args[0] if args else "params.yaml"))
    if metrics:
        print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
