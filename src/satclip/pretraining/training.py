"""Contrastive pretraining with PyTorch Lightning: data module and module (feature cache: ``feature_cache``).

Every random draw of a run (shuffling, augmentation, dropout) is a function of
``(seed, epoch, batch)`` (and the rank, under DDP), so an interrupted run resumed from its last
checkpoint reaches the same result as an uninterrupted one, and two runs with one seed agree on
the CPU.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from satclip.config import PretrainConfig, ValidationConfig
from satclip.data.sampling import fibonacci_land, great_circle_km
from satclip.pretraining.augment import augment_batch, eval_view, jitter_coords
from satclip.pretraining.feature_cache import CachedFeatures, load_or_compute
from satclip.pretraining.loss import clip_loss, gathered_clip_loss
from satclip.pretraining.model import SatCLIP
from satclip.streams import TrainStream, stream_seed

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``(seed, epoch)``; Lightning calls ``set_epoch``."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(stream_seed(self.seed, TrainStream.SHUFFLE, self.epoch))
        return iter(torch.randperm(self.n, generator=gen).tolist())

    def __len__(self) -> int:
        return self.n


def split_indices(points: np.ndarray, cfg: ValidationConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation row indices: a random ``fraction`` or whole lon/lat blocks.

    ``points`` is (N, 2) (lon, lat). With blocks, each ``block_deg`` cell goes to validation
    with probability ``fraction`` (so validation locations are not next to training ones).
    """
    rng = np.random.default_rng(stream_seed(seed, TrainStream.VALIDATION_SPLIT))
    n = len(points)
    if cfg.split == "random":
        val = rng.permutation(n)[: max(1, int(round(cfg.fraction * n)))]
    else:
        bx = np.floor((points[:, 0] + 180.0) / cfg.block_deg).astype(np.int64)
        by = np.floor((points[:, 1] + 90.0) / cfg.block_deg).astype(np.int64)
        block = bx * 100_000 + by
        blocks = np.unique(block)
        chosen = blocks[rng.random(len(blocks)) < cfg.fraction]
        val = np.flatnonzero(np.isin(block, chosen))
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"validation split '{cfg.split}' left {int(is_val.sum())} of {n} pairs for "
                         f"validation; change pretrain.validation")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def dataset_points(dataset: Dataset) -> np.ndarray:
    """(N, 2) (lon, lat) of a pretraining set, without reading its images."""
    points = getattr(dataset, "points", None)
    if points is None:
        raise TypeError(f"{type(dataset).__name__} has no 'points' attribute")
    return np.asarray(points, dtype=np.float64)


class PretrainDataModule(L.LightningDataModule):
    """Train / validation loaders over a pretraining set (or its feature cache)."""

    def __init__(self, dataset: Dataset, cfg: PretrainConfig, seed: int) -> None:
        super().__init__()
        self.dataset, self.cfg, self.seed = dataset, cfg, seed
        self.points = dataset_points(dataset)
        self.train_idx, self.val_idx = split_indices(self.points, cfg.validation, seed)
        self.train_set: Dataset = Subset(dataset, self.train_idx.tolist())
        self.val_set: Dataset = Subset(dataset, self.val_idx.tolist())

    def use_feature_cache(self, model: SatCLIP, folder: str | os.PathLike | None = None,
                          data: str | None = None) -> None:
        """Replace both sets by frozen-backbone features (K views for train, one for val).

        With ``folder`` and ``data`` (:func:`feature_cache.data_digest` of the set), the features
        are read from ``folder`` when computed before, else computed and stored there.
        """
        k = self.cfg.feature_cache.views
        train_feats = load_or_compute(model, self.train_set, self.train_idx, self.cfg, self.seed, k, True, folder, data)
        val_feats = load_or_compute(model, self.val_set, self.val_idx, self.cfg, self.seed, 1, False, folder, data)
        pts = torch.as_tensor(self.points, dtype=torch.float32)
        self.train_set = CachedFeatures(train_feats, pts[self.train_idx])
        self.val_set = CachedFeatures(val_feats, pts[self.val_idx])

    def train_dataloader(self) -> DataLoader:
        """Batches of ``trainer.batch_size`` training items, shuffled per epoch, the last partial batch dropped."""
        t = self.cfg.trainer
        if len(self.train_set) < t.batch_size:
            raise ValueError(f"pretraining set has {len(self.train_set)} training pairs, fewer than "
                             f"pretrain.trainer.batch_size = {t.batch_size}")
        return DataLoader(self.train_set, batch_size=t.batch_size, sampler=EpochShuffle(len(self.train_set), self.seed),
                          drop_last=True, num_workers=t.num_workers, persistent_workers=t.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        """Batches of ``trainer.batch_size`` validation items, in order."""
        t = self.cfg.trainer
        return DataLoader(self.val_set, batch_size=t.batch_size, shuffle=False, num_workers=t.num_workers,
                          persistent_workers=t.num_workers > 0)


# --------------------------------------------------------------------------------------------
# The LightningModule
# --------------------------------------------------------------------------------------------

def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as in the original: no weight decay on biases, norms, 1-D params, logit scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith(".bias") or "logit_scale" in name or ".bn" in name or "norm" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class FiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class SatCLIPModule(L.LightningModule):
    """Training and validation steps of SatCLIP.

    ``hyper_parameters`` hold ``pretrain`` (the whole section), ``location`` (the location
    encoder's config, read by ``satclip.encoders.pretrained``) and ``seed``.
    """

    def __init__(self, pretrain: dict, seed: int = 0, location: dict | None = None) -> None:
        super().__init__()
        from satclip.config import from_dict

        self.cfg: PretrainConfig = from_dict(PretrainConfig, pretrain, "pretrain")
        self.save_hyperparameters({"pretrain": dataclasses.asdict(self.cfg), "seed": seed,
                                   "location": dataclasses.asdict(self.cfg.location)})
        self.seed = seed
        self.model = SatCLIP(self.cfg.image, self.cfg.location, self.cfg.logit_scale_init,
                             self.cfg.logit_scale_max)
        lon, lat = fibonacci_land(self.cfg.validation.candidates_sphere)
        self.register_buffer("candidates", torch.tensor(np.stack([lon, lat], 1), dtype=torch.float32),
                             persistent=False)  # (M, 2) candidate locations for retrieval
        self._candidate_emb: torch.Tensor | None = None
        self._val_km: list[torch.Tensor] = []

    # -- helpers ---------------------------------------------------------------------------
    def _stream_seed(self, stream: TrainStream, batch_idx: int) -> int:
        """The seed of ``stream`` for this rank's batch ``batch_idx`` of the current epoch.

        Under DDP each rank's batch ``batch_idx`` holds other pairs: rank r >= 1 draws its own crops,
        flips, jitter and dropout masks (the rank is one more part of the seed); rank 0, and so every
        single-process run, keeps the draws of (seed, epoch, batch).
        """
        parts = (self.seed, stream, self.current_epoch, batch_idx)
        return stream_seed(*parts, self.global_rank) if self.global_rank else stream_seed(*parts)

    def _generator(self, stream: TrainStream, batch_idx: int) -> torch.Generator:
        return torch.Generator().manual_seed(self._stream_seed(stream, batch_idx))

    def _loss(self, img: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        scale = self.model.scale()
        if self.cfg.trainer.gather_negatives:
            return gathered_clip_loss(img, loc, scale)
        return clip_loss(img, loc, scale)

    def _encode_batch(self, batch: dict, gen: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        coords = batch["point"]
        if "features" in batch:  # feature cache: (B, K, F)
            feats = batch["features"]
            if feats.shape[1] > 1:
                k = (torch.rand(feats.shape[0], generator=gen) * feats.shape[1]).long().to(feats.device)
                feats = feats[torch.arange(feats.shape[0], device=feats.device), k]
            else:
                feats = feats[:, 0]
            img = self.model.encode_image_features(feats)
            if augment:
                coords = jitter_coords(coords, gen, self.cfg.augment.jitter_deg, self.cfg.augment.jitter_mode)
        else:
            images = batch["image"]
            if augment:
                images, coords = augment_batch(images, coords, self.cfg.augment, gen)
            else:
                images = eval_view(images, self.cfg.augment)
            img = self.model.encode_image(images)
        return img, self.model.encode_location(coords)

    # -- steps -----------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        """One contrastive step; dropout and augmentation drawn from (seed, epoch, batch[, rank])."""
        torch.manual_seed(self._stream_seed(TrainStream.DROPOUT, batch_idx))  # dropout
        img, loc = self._encode_batch(batch, self._generator(TrainStream.AUGMENT_TRAIN, batch_idx), augment=True)
        loss = self._loss(img, loc)
        if not torch.isfinite(loss):
            raise FiniteLossError(f"non-finite training loss {loss.item()} at epoch {self.current_epoch}, "
                                  f"batch {batch_idx} (global step {self.global_step}); the last good "
                                  f"checkpoint is the previous epoch's last.ckpt")
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train_loss_step", loss.detach(), on_step=True, on_epoch=False)  # the CSV log's step curve
        self.log("scale", self.model.scale(), on_step=False, on_epoch=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Embed the candidate locations once per validation epoch."""
        with torch.no_grad():
            self._candidate_emb = self.model.encode_location(self.candidates)  # (M, d)
        self._val_km = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Loss, within-batch top-1/top-5 retrieval and the great-circle error against candidates."""
        img, loc = self._encode_batch(batch, self._generator(TrainStream.AUGMENT_VAL, batch_idx), augment=self.cfg.augment.augment_val)
        loss = self._loss(img, loc)
        n = img.shape[0]
        sims = img @ loc.T  # (B, B): image i against every location of the batch
        target = torch.arange(n, device=img.device)
        top5 = sims.topk(min(5, n), dim=1).indices  # (B, 5)
        top1_acc = (top5[:, 0] == target).float().mean()
        top5_acc = (top5 == target[:, None]).any(dim=1).float().mean()
        best = (img @ self._candidate_emb.T).argmax(dim=1)  # (B,)
        pred = self.candidates[best].double().cpu().numpy()
        true = batch["point"].double().cpu().numpy()
        self._val_km.append(torch.as_tensor(great_circle_km(pred[:, 0], pred[:, 1], true[:, 0], true[:, 1])))
        self.log_dict({"val_loss": loss, "val_top1": top1_acc, "val_top5": top5_acc}, on_epoch=True,
                      batch_size=n, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        """Median great-circle error (km) of image -> location retrieval over all validation pairs."""
        km = torch.cat(self._val_km).float().to(self.device)
        km = self.all_gather(km).reshape(-1)
        self.log("val_median_km", km.median(), sync_dist=False)
        self._candidate_emb = None

    def configure_optimizers(self):
        """AdamW with the original's parameter groups; optional warm-up + cosine per step."""
        o = self.cfg.optim
        optimizer = torch.optim.AdamW(parameter_groups(self.model, o.weight_decay), lr=o.lr)
        if o.schedule == "constant" and o.warmup_epochs == 0:
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = total / max(1, self.trainer.max_epochs)
        warmup = int(o.warmup_epochs * steps_per_epoch)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if o.schedule == "constant":
                return 1.0
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
