"""Open a prepared pretraining set by name (the download stage writes them)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset


def open_pretrain_set(name: str, root: str | Path, on_corrupt: str = "fail") -> Dataset:
    """The pretraining set ``name`` (``bluemarble``, ``s2-sample``, ``s2-100k``) under ``root``.

    Items are ``{"image": (C, H, W) float, "point": (2,) (lon, lat)}``; ``on_corrupt`` applies to
    the Sentinel-2 sets (fail, or skip and count unreadable GeoTIFFs).
    """
    if name == "bluemarble":
        from satclip.data.bluemarble import BlueMarbleDataset

        return BlueMarbleDataset(root)
    if name in ("s2-sample", "s2-100k"):
        from satclip.data.s2_100k import S2Dataset

        return S2Dataset(root, on_corrupt=on_corrupt)
    raise ValueError(f"unknown pretraining set {name!r}; known: bluemarble, s2-sample, s2-100k")
