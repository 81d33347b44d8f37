"""The feature cache: a frozen backbone's features of every pretraining image, computed once, on disk.

With a frozen image backbone, only the image head and the location tower train; the backbone's
pre-head features of each image can be computed once and reused for every epoch
(``pretrain.feature_cache``). Training images get ``views`` augmented views each (view ``k`` of
loader batch ``b`` augmented from the stream ``(seed, FEATURE_CACHE, k, b)``), validation images
the single evaluation view; each training step picks one cached view per image.

Exactness. With augmentations off (no crop, or a crop as large as the image, no flips, no blur)
the cached features equal the uncached forward exactly, so a cached run trains the same model.
With the original's augmentations it cannot: the original draws a fresh random crop, flips and a
blur sigma from a continuous range for every image in every epoch, so no finite set of views holds
them all; the cache replaces those fresh draws by ``views`` fixed draws per image (coordinate
jitter stays fresh). That is the trade the paper overlays leave off by default.

On disk. ``<cache>/features/<key>.pt`` (``satclip.data.cache``: outside every DVC output), where
``key`` hashes everything the features depend on: the backbone's weights (their bytes), its
architecture and input bands, the augmentation settings, ``views``, the seed, the rows, and the
data (the bytes of the set's ``index.csv`` and the name and size of every file in its folder).
A restart or resume of a run, a re-run with other head or location settings, and every run of a
sweep that shares backbone and data find the file and skip the backbone. Files are written
atomically and checked (shape, finiteness) when read; an unreadable one is computed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from satclip.config import PretrainConfig
from satclip.pretraining.augment import augment_batch, eval_view
from satclip.pretraining.model import SatCLIP
from satclip.streams import TrainStream, stream_seed

BATCH = 256  # loader batch of the computation; part of each view's random stream, so of the key
FORMAT = 1  # bump when the file layout or the meaning of the streams changes
log = logging.getLogger(__name__)


class CachedFeatures(Dataset):
    """Items ``{"features": (K, F), "point": (2,)}`` from a precomputed feature cache."""

    def __init__(self, features: torch.Tensor, points: torch.Tensor) -> None:
        self.features, self.points = features, points  # (N, K, F), (N, 2)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "point": self.points[i]}


@torch.no_grad()
def compute_features(model: SatCLIP, dataset: Dataset, cfg: PretrainConfig, seed: int, views: int,
                     augment: bool, batch_size: int = BATCH) -> torch.Tensor:
    """Frozen-backbone features of ``views`` views of every item: (N, views, F).

    With ``augment``, view k of batch b is augmented from the stream ``(seed, FEATURE_CACHE, k, b)``;
    otherwise the single view is the evaluation view (central crop).
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=cfg.trainer.num_workers)
    visual = model.visual.eval()
    device = visual.head.weight.device
    out = []
    for b, batch in enumerate(loader):
        per_view = []
        for k in range(views):
            images = batch["image"]
            if augment:
                gen = torch.Generator().manual_seed(stream_seed(seed, TrainStream.FEATURE_CACHE, k, b))
                images, _ = augment_batch(images, batch["point"], cfg.augment, gen)
            else:
                images = eval_view(images, cfg.augment)
            per_view.append(visual.features(images.to(device)).float().cpu())  # (B, F)
        out.append(torch.stack(per_view, dim=1))  # (B, views, F)
    return torch.cat(out, dim=0)


def backbone_digest(model: SatCLIP) -> str:
    """sha256 of the image backbone's weights and buffers (every tensor but the trainable head)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.visual.state_dict().items()):
        if name.startswith("head."):
            continue
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_digest(root: str | os.PathLike) -> str:
    """sha256 of a prepared pretraining set: its ``index.csv`` bytes, every file's name and size.

    Reading every image would cost as much as the cache saves; a file replaced by another of the
    same name and size is therefore not noticed (delete ``<cache>/features`` after such a change).
    """
    root = Path(root)
    h = hashlib.sha256()
    index = root / "index.csv"
    h.update(index.read_bytes() if index.is_file() else b"")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    return h.hexdigest()


def cache_key(model: SatCLIP, cfg: PretrainConfig, data: str, rows: np.ndarray, seed: int, views: int,
              augment: bool) -> str:
    """The file name (without ``.pt``) of one cached feature array: what the features depend on."""
    spec = {
        "format": FORMAT, "batch": BATCH, "backbone": dataclasses.asdict(cfg.image), "weights": backbone_digest(model),
        "augment": dataclasses.asdict(cfg.augment) if augment else {"eval_crop_px": cfg.augment.crop_px},
        "views": views, "seed": seed if augment else None, "data": data,
        "rows": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
    }
    spec["backbone"].pop("freeze_backbone")  # frozen by construction
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _read(path: Path, n: int, views: int) -> torch.Tensor | None:
    try:
        feats = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unreadable file is recomputed, not trusted)
        log.warning("feature cache %s is unreadable (%s); computing it again", path, err)
        return None
    if not (isinstance(feats, torch.Tensor) and feats.ndim == 3 and feats.shape[:2] == (n, views)
            and bool(torch.isfinite(feats).all())):
        log.warning("feature cache %s does not hold (%d, %d, F) finite features; computing it again", path, n, views)
        return None
    return feats


def load_or_compute(model: SatCLIP, dataset: Dataset, rows: np.ndarray, cfg: PretrainConfig, seed: int,
                    views: int, augment: bool, folder: str | os.PathLike | None, data: str | None) -> torch.Tensor:
    """Features (N, views, F) of ``dataset`` (its ``rows``), from ``folder`` when computed before.

    ``folder`` None (or ``data`` None: no folder to fingerprint) keeps them in memory only.
    """
    if folder is None or data is None:
        return compute_features(model, dataset, cfg, seed, views, augment)
    path = Path(folder) / f"{cache_key(model, cfg, data, rows, seed, views, augment)}.pt"
    if path.is_file():
        feats = _read(path, len(rows), views)
        if feats is not None:
            log.info("feature cache: %s (%d x %d views) read from disk", path.name, len(rows), views)
            return feats
    feats = compute_features(model, dataset, cfg, seed, views, augment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(feats, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("feature cache: %s (%d x %d views) computed and stored", path.name, len(rows), views)
    return feats
