"""S2-100K downloads: the Hugging Face shards (resumable, verified) and the 20-patch sample.

Both write the layout ``satclip.data.s2_100k.S2Dataset`` reads (``root/index.csv``,
``root/images/<fn>``). :func:`download_s2_100k` keeps what it fetched in the hub cache (outside
``root``, which is a DVC output: see ``satclip.data.cache``) and records extracted shards in
``root/images/.shards.json``.

The Hugging Face dataset ``torchgeo/s2-100k`` holds ``index.csv`` (``fn, lon, lat``; some copies
of the index use ``lat, lon, url, fn``), ``metadata.parquet`` and ``data/shard-00000.tar`` ..
``shard-00099.tar``, plain tars of 1,000 ``patch_<N>.tif`` each (the dataset card of
``torchgeo/s2-100k``; torchgeo 0.10.1, ``torchgeo/datasets/s2100k.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath

import pandas as pd
from tqdm.auto import tqdm

from satclip.data.download import sha256sum
from satclip.data.hub import hub_file
from satclip.data.lock import DownloadLock
from satclip.data.s2_100k import IMAGES_DIR, S2DataError, read_index
from satclip.data.sources import S2_SAMPLE_FILES, SOURCES, fetch

log = logging.getLogger(__name__)

HF_REPO = "torchgeo/s2-100k"
TOTAL_SHARDS = 100  # data/shard-00000.tar .. shard-00099.tar
PATCHES_PER_SHARD = 1000

# Pins. torchgeo 0.10.1 (torchgeo.datasets.S2100k) reads this dataset at the revision below and
# checks index.csv against the sha256 below (and the single 78 GB satclip.tar, which this module
# does not use). No sha256 of any data/shard-*.tar or of metadata.parquet is published, and whether
# the shards exist at that revision is unverified (no network): the default revision is therefore
# "main", resolved to a commit on the first download and pinned from then on, with every file's
# sha256, in the download lock (satclip.data.lock: trust on first use).
KNOWN_REVISION = "fbdbb78ba57d22d5b6be203913f1e6020c2b4e0a"
KNOWN_SHA256: dict[tuple[str, str], str] = {
    (KNOWN_REVISION, "index.csv"): "9fdcdec776b331fcc2d9ab5af18355efc5bd0716df33ab78e1ff03f60cf343ad",
    (KNOWN_REVISION, "satclip.tar"): "da1bae4e9dd44fb00e5f1fc537b752f5025ac908a73b5a9e24ff90bcbdd56edb",
}

SHARD_MARKER = ".shards.json"
METADATA = "metadata.parquet"  # per-patch metadata of the hub repository (dataset card of torchgeo/s2-100k)
_TIF_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.tiff?$")


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
                     lock: DownloadLock | None = None) -> Path:
    """Download S2-100K from the Hugging Face Hub and lay it out in ``root`` for :class:`S2Dataset`.

    Fetches ``index.csv``, ``metadata.parquet`` and ``data/shard-00000.tar`` ..
    ``shard-{shards-1:05d}.tar`` into the hub cache (:func:`satclip.data.hub.hub_file`: pinned
    revision, sha256 pinned or recorded in the download lock), extracts each shard into
    ``root/images`` once, copies the metadata and writes ``root/index.csv`` (``fn, lon, lat``; with
    fewer than all shards, only the rows of the patches in those shards). Nothing is downloaded
    into ``root``: deleting it (as DVC does before re-running the download stage) costs an
    extraction, not a download. A second call with the same arguments rewrites nothing.

    Args:
        root: output folder.
        shards: how many shards (1,000 patches each) to fetch, 1..100.
        repo: Hugging Face dataset repository.
        revision: commit, branch or tag of the repository (a branch is pinned by the lock).
        endpoint: hub address (default ``$HF_ENDPOINT`` or ``https://huggingface.co``).
        progress: show progress bars.
        lock: the download lock (default :func:`satclip.data.lock.default_lock_path`).

    Returns:
        ``root``.

    Raises:
        ValueError: ``shards`` out of range.
        ChecksumError: a file does not match its sha256.
        DownloadError: a file cannot be fetched.
        LockError: the hub contradicts the download lock.
        S2DataError: a corrupt archive or malformed index.
        CoordinateError: coordinates out of range in the index (the rows are named).
    """
    if not 1 <= shards <= TOTAL_SHARDS:
        raise ValueError(f"shards must be in 1..{TOTAL_SHARDS}, got {shards}")
    root = Path(root)
    images = root / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)

    def fetch_file(relpath: str) -> Path:
        return hub_file(repo, relpath, repo_type="dataset", revision=revision,
                        sha256=KNOWN_SHA256.get((revision, relpath)), endpoint=endpoint, lock=lock,
                        progress=progress)

    index_src = fetch_file("index.csv")
    read_index(index_src)  # fail early on a malformed index, before the large downloads
    _write_if_changed(fetch_file(METADATA).read_bytes(), root / METADATA)  # a copy: the cache's blob stays untouched

    marker = _read_marker(images)
    for k in range(shards):
        shard = f"shard-{k:05d}"
        if _shard_done(marker, shard, images):
            continue
        marker[shard] = extract_shard(fetch_file(f"data/{shard}.tar"), images, progress)
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
