"""Analyses of a trained model for the reports: embeddings, retrieval and image localization."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from satclip.data.sampling import great_circle_km
from satclip.embed import embed_coordinates
from satclip.pretraining.augment import eval_view
from satclip.pretraining.training import SatCLIPModule


def load_module(checkpoint: str | os.PathLike) -> SatCLIPModule:
    """A trained ``SatCLIPModule`` from a checkpoint of the pretrain stage, on the CPU, in eval mode."""
    return SatCLIPModule.load_from_checkpoint(str(checkpoint), map_location="cpu").eval()


def embed_points(module: SatCLIPModule, lon: np.ndarray, lat: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Location embeddings (N, d) of points (lon, lat), L2-normalized, float32.

    The same location tower and batching the extract stage uses (``embed.embed_coordinates``);
    normalized as the contrastive loss sees them.
    """
    emb = embed_coordinates(module.model.location, np.stack([lon, lat], axis=1), batch_size=batch)  # (N, d)
    emb = emb.astype(np.float32, copy=False)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def retrieval_topk(module: SatCLIPModule, dataset, indices, k: int = 5):
    """For dataset items ``indices``: images, true (n, 2) points, top-k candidate points (n, k, 2)."""
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


def validation_split(module: SatCLIPModule, dataset, seed: int) -> np.ndarray:
    """The validation indices of the pretraining run (the same split the training used)."""
    from satclip.pretraining.training import PretrainDataModule

    return PretrainDataModule(dataset, module.cfg, seed).val_idx
