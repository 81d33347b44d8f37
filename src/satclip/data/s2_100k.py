"""S2-100K pretraining images: the Hugging Face download, the 20-patch sample, and a PyTorch dataset.

Layout produced by both :func:`download_s2_100k` and :func:`prepare_s2_sample` (the one
:class:`S2Dataset` reads)::

    root/index.csv            columns fn, lon, lat (degrees)
    root/images/<fn>          12-band uint16 Sentinel-2 L2A GeoTIFFs (256 x 256 px)

:func:`download_s2_100k` also keeps what it fetched under ``root/raw/`` (the upstream ``index.csv``
and ``data/shard-XXXXX.tar``) and records extracted shards in ``root/images/.shards.json``.

Facts (``shared/SATCLIP_FACTS.md``, "S2-100K" and "Image encoder and training"): the Hugging Face
dataset ``torchgeo/s2-100k`` holds ``index.csv`` (``fn, lon, lat``; some copies of the index use
``lat, lon, url, fn``), ``metadata.parquet`` and ``data/shard-00000.tar`` .. ``shard-00099.tar``,
plain tars of 1,000 ``patch_<N>.tif`` each. The images have 12 bands (no B10); the image encoders
take 13 bands scaled by 1/10000 with a zero band in B10's place.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.enums import Interleaving
from rasterio.errors import RasterioError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from satclip.data.download import download, sha256sum
from satclip.data.sampling import check_lonlat
from satclip.data.sources import S2_SAMPLE_FILES, SOURCES, fetch

log = logging.getLogger(__name__)

HF_REPO = "torchgeo/s2-100k"
HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
TOTAL_SHARDS = 100  # data/shard-00000.tar .. shard-00099.tar
PATCHES_PER_SHARD = 1000

# Pins. torchgeo 0.10.1 (torchgeo.datasets.S2100k) reads this dataset at the revision below and
# checks index.csv against the sha256 below (and the single 78 GB satclip.tar, which this module
# does not use). No sha256 of any data/shard-*.tar is known here, and whether the shards exist at
# that revision is unverified (no network): shards are therefore fetched from "main" by default and
# checked against the sha256 the hub advertises for LFS files (X-Linked-Etag).
KNOWN_REVISION = "fbdbb78ba57d22d5b6be203913f1e6020c2b4e0a"
KNOWN_SHA256: dict[tuple[str, str], str] = {
    (KNOWN_REVISION, "index.csv"): "9fdcdec776b331fcc2d9ab5af18355efc5bd0716df33ab78e1ff03f60cf343ad",
    (KNOWN_REVISION, "satclip.tar"): "da1bae4e9dd44fb00e5f1fc537b752f5025ac908a73b5a9e24ff90bcbdd56edb",
}

# Band conventions (SATCLIP_FACTS.md, "Image encoder and training"): the stored patches have 12
# bands; the SSL4EO-S12 backbones take 13 (B10 included), scaled by 1/10000, so a zero band is
# inserted at B10's place.
STORED_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
MODEL_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
B10_INDEX = MODEL_BANDS.index("B10")  # 10
DIVISOR = 10000.0  # L2A digital numbers / 10000 -> reflectance, as the backbones expect

INDEX_COLUMNS = ("fn", "lon", "lat")
ON_CORRUPT = ("fail", "skip")
RAW_DIR = "raw"
IMAGES_DIR = "images"
SHARD_MARKER = ".shards.json"
RETRIES = 2  # extra attempts after a lost connection (each resumes the .part file)
_TIF_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.tiff?$")


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


def _write_if_changed(data: bytes, dest: Path) -> None:
    """Write ``data`` to ``dest`` atomically (temp name, then rename), unless it already holds it."""
    if dest.is_file() and dest.read_bytes() == data:
        return  # keep the mtime: make/DVC see nothing new
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_index(src: Path, dest: Path, keep: set[str] | None = None) -> pd.DataFrame:
    """Normalize the index ``src`` to ``dest`` (columns ``fn, lon, lat``) and return it.

    With ``keep``, only the rows whose ``fn`` is in ``keep`` are written.
    """
    table = read_index(src)
    if keep is not None:
        rows = table["fn"].isin(keep)
        if not rows.any():
            raise S2DataError(f"{src}: none of its {len(table)} files is among the {len(keep)} present")
        table = table[rows].reset_index(drop=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(table.to_csv(index=False, float_format="%.10g").encode(), dest)
    return table


# ----------------------------------------------------------------------------------------------
# Hugging Face download


def _hf_url(endpoint: str, repo: str, revision: str, relpath: str) -> str:
    """Hugging Face ``resolve`` URL of a file in a dataset repository."""
    return f"{endpoint.rstrip('/')}/datasets/{repo}/resolve/{quote(revision, safe='')}/{relpath}"


def _read_marker(images: Path) -> dict[str, list[str]]:
    """Finished shards: shard name -> the image files it extracted (empty when none/unreadable)."""
    try:
        data = json.loads((images / SHARD_MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(images: Path, marker: dict[str, list[str]]) -> None:
    """Record finished shards atomically."""
    _write_if_changed(json.dumps(marker, indent=1, sort_keys=True).encode(), images / SHARD_MARKER)


def _shard_done(marker: dict[str, list[str]], shard: str, images: Path) -> bool:
    """True when ``shard`` was extracted and every file it held is still present."""
    files = marker.get(shard)
    return bool(files) and all((images / f).is_file() for f in files)


def _member_file_name(member: tarfile.TarInfo, archive: Path) -> str | None:
    """The flat file name a tar member extracts to; None for members that are skipped.

    Only regular ``*.tif`` members are extracted; directories inside the archive are flattened.

    Raises:
        S2DataError: an absolute path or a ``..`` component (path traversal).
    """
    name = member.name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise S2DataError(f"{archive}: unsafe member path {member.name!r}; refusing to extract")
    if not member.isreg() or not parts or not _TIF_NAME_RE.match(parts[-1]):
        return None
    return parts[-1]


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Write one member to ``dest`` through a temporary name."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        source = tar.extractfile(member)
        if source is None:
            raise S2DataError(f"{member.name}: not a regular file")
        with source, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def extract_shard(archive: Path, images: Path, progress: bool = True) -> list[str]:
    """Extract the regular ``.tif`` members of ``archive`` into ``images``; return their names.

    A file already present with the member's size is kept (an interrupted extraction resumes).

    Raises:
        S2DataError: the archive is unreadable, has an unsafe or duplicate member name.
    """
    images.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    try:
        with tarfile.open(archive, "r:*") as tar, tqdm(desc=f"extract {archive.name}", unit="file",
                                                       disable=not progress) as bar:
            for member in tar:
                name = _member_file_name(member, archive)
                if name is None:
                    continue
                if name in names:
                    raise S2DataError(f"{archive}: two members extract to {name!r}")
                dest = images / name
                if not (dest.is_file() and dest.stat().st_size == member.size):
                    _extract_member(tar, member, dest)
                names.append(name)
                bar.update(1)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise S2DataError(f"{archive}: corrupt or unreadable tar archive ({err})") from err
    if not names:
        raise S2DataError(f"{archive}: no .tif files in the archive")
    return names


def download_s2_100k(root: Path, shards: int = 1, repo: str = HF_REPO, revision: str = "main", *,
                     endpoint: str | None = None, progress: bool = True,
                     retries: int = RETRIES) -> Path:
    """Download S2-100K from Hugging Face into ``root`` and lay it out for :class:`S2Dataset`.

    Fetches ``index.csv`` and ``data/shard-00000.tar`` .. ``shard-{shards-1:05d}.tar`` (resumable,
    sha256-checked), extracts each shard into ``root/images`` once, and writes ``root/index.csv``
    (``fn, lon, lat``; with fewer than all shards, only the rows of the patches in those shards).
    A second call with the same arguments makes no request and rewrites nothing.

    Args:
        root: output folder.
        shards: how many shards (1,000 patches each) to fetch, 1..100.
        repo: Hugging Face dataset repository.
        revision: branch, tag or commit of the repository.
        endpoint: hub address (default ``$HF_ENDPOINT`` or ``https://huggingface.co``).
        progress: show progress bars.
        retries: extra attempts, each resuming the partial file, after a lost connection.

    Returns:
        ``root``.

    Raises:
        ValueError: ``shards`` out of range.
        ChecksumError: a file does not match its sha256 (nothing is kept of it).
        DownloadError: a file cannot be fetched (a partial ``.part`` is kept for resuming).
        S2DataError: a corrupt archive or malformed index.
        CoordinateError: coordinates out of range in the index (the rows are named).
    """
    if not 1 <= shards <= TOTAL_SHARDS:
        raise ValueError(f"shards must be in 1..{TOTAL_SHARDS}, got {shards}")
    root = Path(root)
    endpoint = endpoint or os.environ.get(HF_ENDPOINT_ENV) or HF_DEFAULT_ENDPOINT
    raw, images = root / RAW_DIR, root / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)

    index_src = download(_hf_url(endpoint, repo, revision, "index.csv"), raw / "index.csv",
                         KNOWN_SHA256.get((revision, "index.csv")), progress=progress, retries=retries)
    read_index(index_src)  # fail early on a malformed index, before the large downloads

    marker = _read_marker(images)
    for k in range(shards):
        shard = f"shard-{k:05d}"
        if _shard_done(marker, shard, images):
            continue
        relpath = f"data/{shard}.tar"
        archive = download(_hf_url(endpoint, repo, revision, relpath), raw / relpath,
                           KNOWN_SHA256.get((revision, relpath)), progress=progress,
                           retries=retries)
        marker[shard] = extract_shard(archive, images, progress)
        _write_marker(images, marker)

    # with a subset of the shards, the index lists exactly the patches of those shards
    present = {f for k in range(shards) for f in marker[f"shard-{k:05d}"]}
    table = write_index(index_src, root / "index.csv", present if shards < TOTAL_SHARDS else None)
    log.info("S2-100K: %d patches from %d shards in %s", len(table), shards, root)
    return root


# ----------------------------------------------------------------------------------------------
# the 20-patch sample


def _place(src: Path, dest: Path, sha256: str) -> None:
    """Hard-link (or copy) the verified file ``src`` to ``dest`` unless ``dest`` already matches."""
    if dest.is_file() and (os.path.samefile(src, dest) or sha256sum(dest) == sha256):
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_s2_sample(root: Path, raw_dir: Path | None = None, mirror: str | None = None) -> Path:
    """Lay out the 20 real S2-100K patches (registry ``s2_sample_*``) as ``root/index.csv`` + ``images``.

    Each file is fetched (checked against its registered sha256) into ``raw_dir`` through
    :func:`satclip.data.sources.fetch`, taken from ``mirror`` when given, then hard-linked or
    copied into ``root``. Idempotent.

    Returns:
        ``root``.
    """
    root = Path(root)
    images = root / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    for fn in S2_SAMPLE_FILES:
        name = f"s2_sample/{fn}"
        _place(fetch(name, raw_dir, mirror=mirror, progress=False), images / fn, SOURCES[name].sha256)
    index_src = fetch("s2_sample_index", raw_dir, mirror=mirror, progress=False)
    write_index(index_src, root / "index.csv", set(S2_SAMPLE_FILES))
    return root


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
            raises :class:`S2DataError` naming it. ``"skip"``: every file's header is checked up
            front (about 3 ms a file) and bad files are dropped and listed in ``skipped``
            as ``(fn, reason)``; a file that passes the check but still fails to decode raises.
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

    def _drop_bad(self, table: pd.DataFrame) -> pd.DataFrame:
        """Check every file's header; record and drop the bad ones."""
        keep = []
        for fn in table["fn"]:
            problem = check_patch(self.images / fn)
            keep.append(problem is None)
            if problem is not None:
                self.skipped.append((fn, problem))
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
