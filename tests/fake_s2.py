"""A fake S2-100K for the tests: tiny GeoTIFF patches, tar shards, and a loopback hub serving them."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

from conftest import FakeHub

REPO = "torchgeo/s2-100k"
PER_SHARD = 3  # fake shards hold 3 tiny patches (the real ones 1,000)


def write_tif(path: Path, bands: int = 12, size: int = 16, seed: int = 0) -> bytes:
    """A small uint16 GeoTIFF in UTM like the real patches; returns its bytes."""
    data = np.random.default_rng(seed).integers(0, 10000, (bands, size, size), dtype=np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands,
                       dtype="uint16", crs="EPSG:32633", compress="lzw",
                       transform=from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(data)
    return path.read_bytes()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding ``members`` (name -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class S2Hub:
    """The loopback hub serving a fake ``torchgeo/s2-100k`` (``files``: repo path -> bytes)."""

    hub: FakeHub
    files: dict[str, bytes]
    images: dict[str, bytes]

    def serve(self, rel: str, data: bytes) -> None:
        """Serve ``data`` as ``rel``; the index as a plain git file, the rest as LFS files."""
        self.files[rel] = data
        self.hub.add(REPO, rel, data, lfs=rel != "index.csv")


def serve_s2_100k(hub: FakeHub, src: Path, shards: int = 2) -> S2Hub:
    """Serve a fake S2-100K on ``hub``; the patches are written under ``src``.

    ``shards`` shards of 3 patches, an index with rows for one more, undownloaded shard, and
    ``metadata.parquet``.
    """
    src.mkdir(parents=True, exist_ok=True)
    fake = S2Hub(hub, {}, {})
    rows = []
    for k in range(shards + 1):
        members = {}
        for j in range(PER_SHARD):
            n = k * PER_SHARD + j
            fn = f"patch_{n}.tif"
            members[fn] = fake.images[fn] = write_tif(src / fn, seed=n)
            rows.append((10.0 * n - 40, -100.0 + 20 * n, f"https://example.invalid/{fn}", fn))
        if k < shards:
            fake.serve(f"data/shard-{k:05d}.tar", tar_bytes(members))
    # the `lat, lon, url, fn` variant of the upstream index
    fake.serve("index.csv", pd.DataFrame(rows, columns=["lat", "lon", "url", "fn"]).to_csv(index=False).encode())
    fake.serve("metadata.parquet", b"PAR1 not really parquet PAR1")
    return fake
