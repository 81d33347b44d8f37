"""S2-100K pretraining pairs as a PyTorch dataset: ``index.csv`` plus 12-band GeoTIFF patches.

Layout (written by ``satclip.data.s2_100k_download`` for the full set and for the 20-patch
sample)::

    root/index.csv            columns fn, lon, lat (degrees)
    root/images/<fn>          12-band uint16 Sentinel-2 L2A GeoTIFFs (256 x 256 px)

The images have 12 bands (no B10); the image encoders take 13 bands scaled by 1/10000 with a
zero band in B10's place (Klemmer et al., AAAI 2025, Section 3; the SSL4EO-S12 backbones of
torchgeo, ``torchgeo.models.ResNet18_Weights.SENTINEL2_ALL_MOCO``, are trained on 13 bands).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.enums import Interleaving
from rasterio.errors import RasterioError
from torch.utils.data import Dataset

from satclip.data.sampling import check_lonlat

log = logging.getLogger(__name__)

# Band conventions (microsoft/satclip at commit 1ead106,
# ``satclip/datamodules/s2_geo_dataset.py``): the stored patches have 12
# bands; the SSL4EO-S12 backbones take 13 (B10 included), scaled by 1/10000, so a zero band is
# inserted at B10's place.
STORED_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
MODEL_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
B10_INDEX = MODEL_BANDS.index("B10")  # 10
DIVISOR = 10000.0  # L2A digital numbers / 10000 -> reflectance, as the backbones expect

INDEX_COLUMNS = ("fn", "lon", "lat")
ON_CORRUPT = ("fail", "skip")
IMAGES_DIR = "images"


class S2DataError(RuntimeError):
    """An S2 file (index, archive or GeoTIFF) is missing, malformed or corrupt; the message names it."""


# ----------------------------------------------------------------------------------------------
# index.csv


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """Read an S2-100K index in either upstream layout and return columns ``fn, lon, lat``.

    Accepts ``fn, lon, lat`` and ``lat, lon, url, fn`` (any column order; extra columns dropped).
    ``fn`` is reduced to its base name.

    Raises:
        S2DataError: the file is missing or unreadable, lacks a column, or has an empty ``fn``.
        CoordinateError: NaN, non-numeric or out-of-range coordinates (the rows are named).
    """
    path = Path(path)
    if not path.is_file():
        raise S2DataError(f"{path}: index file not found")
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise S2DataError(f"{path}: cannot read the index as CSV ({err})") from err
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in INDEX_COLUMNS if c not in table.columns]
    if missing:
        raise S2DataError(f"{path}: index lacks column(s) {', '.join(missing)} "
                          f"(has {', '.join(table.columns) or 'none'}; needs fn, lon, lat)")
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=float)  # (N,)
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=float)  # (N,)
    check_lonlat(lon, lat, str(path))
    fn = table["fn"].map(lambda v: PurePosixPath(str(v).strip()).name if pd.notna(v) else "")
    empty = np.flatnonzero(fn.to_numpy() == "")
    if len(empty):
        raise S2DataError(f"{path}: {len(empty)} rows with an empty fn; first rows: "
                          f"{', '.join(str(i) for i in empty[:5])}")
    return pd.DataFrame({"fn": fn.to_numpy(dtype=object), "lon": lon, "lat": lat})


# ----------------------------------------------------------------------------------------------
# dataset


def _block_problem(src: rasterio.DatasetReader, size: int) -> str | None:
    """A truncation found from the TIFF header: a data block that ends past the end of the file."""
    block_h, block_w = src.block_shapes[0]
    rows, cols = math.ceil(src.height / block_h), math.ceil(src.width / block_w)
    bands = range(1, src.count + 1) if src.interleaving == Interleaving.band else [1]
    end = 0
    for band in bands:
        for r in range(rows):
            for c in range(cols):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
                length = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
                if offset and length:
                    end = max(end, int(offset) + int(length))
    if end > size:
        return f"truncated: image data ends at byte {end} but the file has {size} bytes"
    return None


def _header_problem(src: rasterio.DatasetReader, size: int) -> str | None:
    """What is wrong with an open GeoTIFF, judged from its header alone; None when it looks fine."""
    if src.count != len(STORED_BANDS):
        return (f"{src.count} bands, expected {len(STORED_BANDS)} "
                f"({' '.join(STORED_BANDS)})")
    return _block_problem(src, size)


def check_patch(path: Path) -> str | None:
    """Header-only check of one patch (fast, no pixels read): a problem description, or None."""
    if not path.is_file():
        return "missing file"
    try:
        with rasterio.open(path) as src:
            return _header_problem(src, path.stat().st_size)
    except (RasterioError, OSError, ValueError) as err:
        return f"unreadable or corrupt GeoTIFF ({err})"


def read_patch(path: Path) -> torch.Tensor:
    """Read one 12-band patch as the 13-band, 1/10000-scaled float tensor the encoders take.

    Returns:
        FloatTensor (13, H, W): B01..B09, B10 = 0, B11, B12.

    Raises:
        S2DataError: the file is missing, unreadable, truncated or has the wrong band count.
    """
    if not path.is_file():
        raise S2DataError(f"{path}: missing file")
    try:
        with rasterio.open(path) as src:
            problem = _header_problem(src, path.stat().st_size)
            if problem is not None:
                raise S2DataError(f"{path}: {problem}")
            stored = src.read()  # (12, H, W) uint16
    except (RasterioError, OSError, ValueError) as err:
        raise S2DataError(f"{path}: unreadable or corrupt GeoTIFF ({err})") from err
    scaled = stored.astype(np.float32) / np.float32(DIVISOR)  # (12, H, W)
    zero = np.zeros((1, *scaled.shape[1:]), dtype=np.float32)  # (1, H, W)
    image = np.concatenate([scaled[:B10_INDEX], zero, scaled[B10_INDEX:]])  # (13, H, W)
    return torch.from_numpy(image)


class S2Dataset(Dataset):
    """S2-100K-style pairs from ``root/index.csv`` + ``root/images/*.tif``.

    Each item is ``{"image": FloatTensor (13, H, W), "point": FloatTensor (2,) = (lon, lat)}``
    (see :func:`read_patch` for the band order and scaling), passed through ``transform`` if given.

    Args:
        root: folder with ``index.csv`` (``fn, lon, lat`` or ``lat, lon, url, fn``) and ``images/``.
        on_corrupt: ``"fail"``: reading a missing, unreadable, truncated or wrong-band-count file
            raises :class:`S2DataError` naming it when it is read. ``"skip"``: every file is
            decoded once up front with :func:`read_patch` (a sound header does not make sound
            pixels: a file with a damaged data block fails only when its pixels are read), on a
            thread pool, and the bad files are dropped and listed in ``skipped`` as
            ``(fn, reason)``; the set then holds only files that decode, so training never meets a
            corrupt file and batches stay deterministic. Cost: 20-34 ms a file on one thread
            (median of 5 passes over the 20 real 256 x 256 x 12 uint16 LZW sample patches, page
            cache warm, on a loaded 2-core machine; the header-only :func:`check_patch` takes
            3 ms), so about 3 minutes for S2-100K on 16 cores. A set with nothing left after
            skipping is an error naming ``root``, the count and the first reason. Not caught:
            a damaged block that still decodes (a single flipped bit often does, to wrong
            pixels); only a checksum finds that (the downloaded shards are sha256-checked).
        transform: callable applied to each sample dict.
    """

    def __init__(self, root: str | os.PathLike, on_corrupt: str = "fail",
                 transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None):
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, got {on_corrupt!r}")
        self.root = Path(root)
        self.images = self.root / IMAGES_DIR
        self.on_corrupt = on_corrupt
        self.transform = transform
        self.skipped: list[tuple[str, str]] = []
        table = read_index(self.root / "index.csv")
        if on_corrupt == "skip":
            table = self._drop_bad(table)
        self.fns: list[str] = table["fn"].tolist()
        self.points = torch.tensor(table[["lon", "lat"]].to_numpy(), dtype=torch.float32)  # (N, 2)

    def _decode_problem(self, fn: str) -> str | None:
        """Why ``fn`` cannot be read (header or pixels), or None when it decodes."""
        path = self.images / fn
        try:
            read_patch(path)
        except S2DataError as err:
            return str(err).removeprefix(f"{path}: ")
        return None

    def _drop_bad(self, table: pd.DataFrame) -> pd.DataFrame:
        """Decode every file once; record and drop the ones that fail (``S2DataError`` if none is left)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            problems = list(pool.map(self._decode_problem, table["fn"]))  # index order
        keep = [problem is None for problem in problems]
        self.skipped = [(fn, problem) for fn, problem in zip(table["fn"], problems, strict=True) if problem]
        if not any(keep):
            first = self.skipped[0] if self.skipped else ("(none)", "the index is empty")
            raise S2DataError(f"{self.root}: no usable patch left after skipping {len(self.skipped)} "
                              f"of {len(table)} files (first: {first[0]}: {first[1]})")
        if self.skipped:
            log.warning("%s: skipped %d of %d files (first: %s: %s)", self.root, len(self.skipped),
                        len(table), *self.skipped[0])
        return table[keep].reset_index(drop=True)

    def __len__(self) -> int:
        """Number of patches."""
        return len(self.fns)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Patch ``i``: image (13, H, W) float32 and point (2,) = (lon, lat) float32."""
        sample = {"image": read_patch(self.images / self.fns[i]),  # (13, H, W)
                  "point": self.points[i].clone()}  # (2,)
        return self.transform(sample) if self.transform is not None else sample
