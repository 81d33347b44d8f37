"""Blue Marble patches: geometry of the cut, the stored set, the dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satclip.data.bluemarble import (
    BlueMarbleDataset,
    BlueMarbleError,
    bmng_path,
    build_bluemarble,
    cut_patches,
)
from satclip.data.sampling import CoordinateError, is_land


def coded_mosaic(h: int = 180, w: int = 360) -> np.ndarray:
    """(H, W, 3) uint8 mosaic whose channel 0 is the column mod 256 and channel 1 the row."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([cols % 256, rows, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def test_patch_is_centred_on_the_point():
    mosaic = coded_mosaic()  # 1 px per degree
    patches = cut_patches(mosaic, np.array([10.5]), np.array([20.5]), 4)
    assert patches.shape == (1, 3, 4, 4)
    # centre pixel (index P//2) is column floor(10.5 + 180) = 190, row floor(90 - 20.5) = 69
    assert patches[0, 0, 2, 2] == 190 and patches[0, 1, 2, 2] == 69


def test_patches_wrap_across_the_antimeridian_and_clamp_at_poles():
    mosaic = coded_mosaic()
    patch = cut_patches(mosaic, np.array([179.5]), np.array([89.5]), 4)[0]
    assert patch[0, 0].tolist() == [357 % 256, 358 % 256, 359 % 256, 0]  # columns 357..359, then 0
    assert patch[1, :, 0].tolist() == [0, 0, 0, 1]  # rows above the pole clamp to row 0


def test_bad_centres_are_rejected():
    with pytest.raises(CoordinateError, match="patch centres"):
        cut_patches(coded_mosaic(), np.array([0.0]), np.array([95.0]), 4)


def test_real_bluemarble_set(tmp_path):
    assert bmng_path().is_file()
    root = build_bluemarble(tmp_path / "bm", n_points=64, seed=0, min_lat=-60, max_lat=80, patch_px=16)
    assert sorted(p.name for p in root.iterdir()) == ["images.npy", "index.csv"]
    ds = BlueMarbleDataset(root)
    assert len(ds) == 64
    item = ds[3]
    assert item["image"].shape == (3, 16, 16) and 0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1
    index = pd.read_csv(root / "index.csv")
    assert list(index.columns) == ["fn", "lon", "lat"]
    assert is_land(index["lon"], index["lat"]).all() and index["lat"].between(-60, 80).all()
    assert item["point"].tolist() == pytest.approx([index["lon"][3], index["lat"][3]], abs=1e-4)
    # land patches are not the ocean blue of Blue Marble on average
    images = np.load(root / "images.npy")
    assert images[:, 2].mean() < images[:, 1].mean() + 40


def test_dataset_reports_missing_and_mismatched_files(tmp_path):
    with pytest.raises(BlueMarbleError, match="images.npy: missing"):
        BlueMarbleDataset(tmp_path)
    np.save(tmp_path / "images.npy", np.zeros((2, 3, 4, 4), dtype=np.uint8))
    pd.DataFrame({"fn": [0, 1, 2], "lon": [0, 1, 2], "lat": [0, 1, 2]}).to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(BlueMarbleError, match="does not match 3 index rows"):
        BlueMarbleDataset(tmp_path)
    pd.DataFrame({"fn": [0, 1], "x": [0, 1], "lat": [0, 1]}).to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(BlueMarbleError, match=r"missing columns \['lon'\]"):
        BlueMarbleDataset(tmp_path)
