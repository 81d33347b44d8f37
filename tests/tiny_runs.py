"""Tiny pretraining runs for the tests: a learnable Blue Marble-like set and its params."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightning.pytorch.callbacks import Callback

from satclip.config import Params, from_dict

N = 320  # pairs in the tiny set


def write_tiny_set(root, n: int = N, px: int = 8, seed: int = 0) -> None:
    """A learnable Blue Marble-like set: each patch's colour is a smooth function of its location."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180, 180, n)
    lat = np.degrees(np.arcsin(rng.uniform(-0.9, 0.9, n)))
    base = np.stack([np.cos(np.radians(lat)), (np.sin(np.radians(lon)) + 1) / 2,
                     (np.cos(np.radians(lon)) + 1) / 2], axis=1)  # (n, 3) in [0, 1]
    images = base[:, :, None, None] + 0.05 * rng.standard_normal((n, 3, px, px))
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "images.npy", (np.clip(images, 0, 1) * 255).astype(np.uint8))
    pd.DataFrame({"fn": np.arange(n), "lon": lon, "lat": lat}).to_csv(root / "index.csv", index=False)


def tiny_params(tmp_path, **pretrain) -> Params:
    write_tiny_set(tmp_path / "data" / "pretrain" / "bluemarble")
    section = {
        "runs": 1,
        "image": {"backbone": "small_cnn", "cnn_widths": [4, 8]},
        "location": {"legendre_polys": 3, "hidden_dim": 16, "embed_dim": 8, "dropout": 0.0},
        "augment": {"crop_px": 6},
        "trainer": {"epochs": 5, "batch_size": 32},
        "optim": {"lr": 0.01},
        "validation": {"candidates_sphere": 300},
    }
    for key, value in pretrain.items():
        section[key] = {**section.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(Params, {"paths": {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")},
                              "pretrain": section}, "")


class Interrupt(Callback):
    """Raise when epoch ``at`` starts (after the previous epoch's checkpoint is written)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.at:
            raise KeyboardInterrupt("simulated kill")
