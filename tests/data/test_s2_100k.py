"""S2-100K: Hugging Face download against a loopback hub, the 20 real patches, corrupt files, index checks."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from conftest import FakeHub
from fake_s2 import PER_SHARD, REPO, S2Hub, serve_s2_100k, tar_bytes, write_tif
from satclip.data import s2_100k
from satclip.data import s2_100k_download as s2_download
from satclip.data.download import ChecksumError
from satclip.data.s2_100k import S2DataError, S2Dataset, read_index
from satclip.data.s2_100k_download import download_s2_100k, extract_shard, prepare_s2_sample
from satclip.data.sampling import CoordinateError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s2_hub(hub: FakeHub, tmp_path: Path) -> S2Hub:
    return serve_s2_100k(hub, tmp_path / "hub_src")


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# ----------------------------------------------------------------------------------------------
# Hugging Face download


def test_download_extracts_normalizes_and_is_idempotent(s2_hub: S2Hub, tmp_path: Path) -> None:
    root, hub = tmp_path / "s2", s2_hub.hub
    assert download_s2_100k(root, shards=2, progress=False) == root

    index = pd.read_csv(root / "index.csv")
    assert list(index.columns) == ["fn", "lon", "lat"]
    assert list(index.fn) == [f"patch_{n}.tif" for n in range(2 * PER_SHARD)]  # shard 2 dropped
    assert np.allclose(index.lon, [-100.0 + 20 * n for n in range(6)])
    assert np.allclose(index.lat, [10.0 * n - 40 for n in range(6)])
    for fn in index.fn:
        assert (root / "images" / fn).read_bytes() == s2_hub.images[fn]
    assert (root / "metadata.parquet").read_bytes() == s2_hub.files["metadata.parquet"]
    for path in ["index.csv", "metadata.parquet", "data/shard-00000.tar", "data/shard-00001.tar"]:
        assert len(hub.gets(path)) == 1
    # nothing downloaded into the output folder (a DVC output): the files stay in the hub cache
    assert sorted(p.name for p in root.iterdir()) == ["images", "index.csv", "metadata.parquet"]
    cached = {p.name for p in (tmp_path / "hf-cache").rglob("*.tar")}
    assert cached == {"shard-00000.tar", "shard-00001.tar"}
    # the lock pins main to the hub's commit and records every file's sha256
    lock = json.loads((tmp_path / "downloads.lock").read_text())
    assert lock["revisions"] == {f"datasets/{REPO}": {"main": hub.commit}}
    assert {k.split("/", 3)[-1] for k in lock["files"]} == {"index.csv", "metadata.parquet",
                                                            "data/shard-00000.tar", "data/shard-00001.tar"}
    assert all(v["sha256"] == sha(s2_hub.files[k.split("@", 1)[1].split("/", 1)[1]])
               for k, v in lock["files"].items())

    sample = S2Dataset(root)[4]
    assert sample["image"].shape == (13, 16, 16)
    assert torch.allclose(sample["point"], torch.tensor([-20.0, 0.0]))

    before_requests, before_images = len(hub.requests), mtimes(root / "images")
    before_index = (root / "index.csv").stat().st_mtime_ns
    download_s2_100k(root, shards=2, progress=False)
    assert len(hub.requests) == before_requests  # nothing fetched again
    assert mtimes(root / "images") == before_images  # nothing extracted again
    assert (root / "index.csv").stat().st_mtime_ns == before_index

    # the output folder deleted (DVC does so before re-running the stage): extracted again from
    # the cache, nothing downloaded
    shutil.rmtree(root)
    download_s2_100k(root, shards=2, progress=False)
    assert len(hub.requests) == before_requests
    assert len(pd.read_csv(root / "index.csv")) == 2 * PER_SHARD

    # fewer shards than before: the index lists only the requested shards' patches
    download_s2_100k(root, shards=1, progress=False)
    assert list(pd.read_csv(root / "index.csv").fn) == [f"patch_{n}.tif" for n in range(PER_SHARD)]
    assert len(hub.requests) == before_requests


def test_wrong_advertised_hash_fails_and_leaves_nothing(s2_hub: S2Hub, tmp_path: Path) -> None:
    s2_hub.hub.advertise["data/shard-00001.tar"] = "0" * 64
    root = tmp_path / "s2"
    with pytest.raises(ChecksumError, match="shard-00001"):
        download_s2_100k(root, shards=2, progress=False)
    assert not (root / "images" / f"patch_{PER_SHARD}.tif").exists()
    assert not (root / "index.csv").exists()
    assert "shard-00001" not in (tmp_path / "downloads.lock").read_text()
    assert {p.name for p in (tmp_path / "hf-cache").rglob("*.tar")} == {"shard-00000.tar"}


def test_pinned_index_hash_is_enforced(s2_hub: S2Hub, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(s2_download.KNOWN_SHA256, ("main", "index.csv"), "2" * 64)
    with pytest.raises(ChecksumError, match="index.csv"):
        download_s2_100k(tmp_path / "s2", shards=1, progress=False)
    assert not s2_hub.hub.gets("data/shard-00000.tar")


def test_cut_connection_is_resumed(s2_hub: S2Hub, tmp_path: Path) -> None:
    rel = "data/shard-00001.tar"
    s2_hub.hub.cut_once.add(rel)
    root = tmp_path / "s2"
    download_s2_100k(root, shards=2, progress=False)
    assert len(s2_hub.hub.gets(rel)) == 2  # the cut, then the rest (huggingface_hub retries)
    assert len(pd.read_csv(root / "index.csv")) == 2 * PER_SHARD


def test_bad_index_coordinates_fail_before_shards(s2_hub: S2Hub, tmp_path: Path) -> None:
    s2_hub.serve("index.csv", b"fn,lon,lat\npatch_0.tif,10,20\npatch_1.tif,200,20\npatch_2.tif,0,-95\n")
    with pytest.raises(CoordinateError, match=r"index\.csv.*row 1.*row 2"):
        download_s2_100k(tmp_path / "s2", shards=1, progress=False)
    assert not s2_hub.hub.gets("data/shard-00000.tar")


def test_unsafe_or_odd_tar_members(tmp_path: Path) -> None:
    good = write_tif(tmp_path / "g.tif")
    archive = tmp_path / "shard.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [("images/patch_1.tif", good), ("README.txt", b"hi")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("patch_2.tif")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive.write_bytes(buf.getvalue())
    out = tmp_path / "out"
    assert extract_shard(archive, out, progress=False) == ["patch_1.tif"]  # flattened; others skipped
    assert sorted(p.name for p in out.iterdir()) == ["patch_1.tif"]

    archive.write_bytes(tar_bytes({"../evil.tif": good}))
    with pytest.raises(S2DataError, match=r"unsafe member path '\.\./evil\.tif'"):
        extract_shard(archive, tmp_path / "out2", progress=False)
    assert not (tmp_path / "evil.tif").exists()


def test_shards_out_of_range(tmp_path: Path) -> None:
    for bad in (0, 101):
        with pytest.raises(ValueError, match="shards"):
            download_s2_100k(tmp_path, shards=bad, endpoint="http://127.0.0.1:9", progress=False)


# ----------------------------------------------------------------------------------------------
# the 20 real patches


def test_real_sample_patches(tmp_path: Path, geodata: Path) -> None:
    root = prepare_s2_sample(tmp_path / "s2", raw_dir=tmp_path / "raw", mirror=str(geodata))
    upstream = pd.read_csv(geodata / "s2-100k-sample" / "index.csv")  # lat, lon, url, fn
    ds = S2Dataset(root)
    assert len(ds) == len(upstream) == 20
    by_fn = upstream.set_index("fn")
    for i in range(len(ds)):
        sample = ds[i]
        image, point = sample["image"], sample["point"]
        assert image.dtype == torch.float32 and image.shape == (13, 256, 256)
        assert torch.all(image[10] == 0)  # B10
        assert float(image.max()) < 3.0 and float(image.min()) >= 0.0
        assert float(image[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]].amax(dim=(1, 2)).min()) > 0
        row = by_fn.loc[ds.fns[i]]
        assert point.dtype == torch.float32 and point.shape == (2,)
        assert torch.equal(point, torch.tensor([row.lon, row.lat], dtype=torch.float32))
    with rasterio.open(root / "images" / ds.fns[0]) as src:  # band order and scale
        raw = src.read().astype(np.float32) / 10000
    image = ds[0]["image"].numpy()
    assert np.array_equal(image[:10], raw[:10]) and np.array_equal(image[11:], raw[10:])

    before = mtimes(root / "images") | {"index.csv": (root / "index.csv").stat().st_mtime_ns}
    prepare_s2_sample(root, raw_dir=tmp_path / "raw", mirror=str(geodata))
    assert mtimes(root / "images") | {"index.csv": (root / "index.csv").stat().st_mtime_ns} == before


# ----------------------------------------------------------------------------------------------
# corrupt files and index checks


def make_layout(root: Path) -> None:
    """Two good patches, a truncated one, a 3-band one, an index row without file, a non-TIFF."""
    images = root / "images"
    images.mkdir(parents=True)
    for n in range(2):
        write_tif(images / f"patch_{n}.tif", seed=n)
    data = write_tif(images / "patch_trunc.tif", seed=5)
    (images / "patch_trunc.tif").write_bytes(data[: len(data) // 2])
    write_tif(images / "patch_3band.tif", bands=3)
    (images / "patch_junk.tif").write_bytes(b"not a tiff at all")
    fns = ["patch_0.tif", "patch_trunc.tif", "patch_3band.tif", "patch_gone.tif", "patch_junk.tif",
           "patch_1.tif"]
    pd.DataFrame({"fn": fns, "lon": np.linspace(-10, 10, len(fns)), "lat": 5.0}).to_csv(
        root / "index.csv", index=False)


@pytest.mark.parametrize("i, fn, problem", [
    (1, "patch_trunc.tif", "truncated"),
    (2, "patch_3band.tif", "3 bands, expected 12"),
    (3, "patch_gone.tif", "missing file"),
    (4, "patch_junk.tif", "unreadable or corrupt"),
])
def test_corrupt_files_fail_by_name(tmp_path: Path, i: int, fn: str, problem: str) -> None:
    make_layout(tmp_path)
    ds = S2Dataset(tmp_path)  # "fail" checks lazily
    assert len(ds) == 6
    with pytest.raises(S2DataError, match=f"{fn}: {problem}"):
        ds[i]


def test_truncated_file_is_caught_at_read_even_without_header_check(tmp_path: Path) -> None:
    make_layout(tmp_path)
    with pytest.raises(S2DataError, match="patch_trunc.tif"):
        s2_100k.read_patch(tmp_path / "images" / "patch_trunc.tif")


def test_corrupt_files_skipped_and_counted(tmp_path: Path) -> None:
    make_layout(tmp_path)
    seen: list[str] = []
    ds = S2Dataset(tmp_path, on_corrupt="skip", transform=lambda s: seen.append("t") or s)
    assert ds.fns == ["patch_0.tif", "patch_1.tif"]
    assert [fn for fn, _ in ds.skipped] == ["patch_trunc.tif", "patch_3band.tif", "patch_gone.tif",
                                            "patch_junk.tif"]
    reasons = dict(ds.skipped)
    assert reasons["patch_trunc.tif"].startswith("truncated")
    assert reasons["patch_3band.tif"].startswith("3 bands")
    assert reasons["patch_gone.tif"] == "missing file"
    assert torch.allclose(ds[1]["point"], torch.tensor([10.0, 5.0]))
    assert seen == ["t"]
    with pytest.raises(ValueError, match="on_corrupt"):
        S2Dataset(tmp_path, on_corrupt="ignore")


def test_index_layouts_are_normalized(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("lat,lon,url,fn\n-54.2,-68.2,https://x/patch_1.tif,patch_1.tif\n36.0,9.5,u,images/patch_2.tif\n")
    b = tmp_path / "b.csv"
    b.write_text("fn, lon, lat\npatch_1.tif, -68.2, -54.2\npatch_2.tif, 9.5, 36.0\n")
    for path in (a, b):
        table = read_index(path)
        assert list(table.columns) == ["fn", "lon", "lat"]
        assert list(table.fn) == ["patch_1.tif", "patch_2.tif"]
        assert np.allclose(table.lon, [-68.2, 9.5]) and np.allclose(table.lat, [-54.2, 36.0])


@pytest.mark.parametrize("text, error, match", [
    ("fn,lon,lat\np0.tif,0,0\np1.tif,181,0\np2.tif,0,nan\n", CoordinateError, r"bad\.csv.*2 rows.*row 1.*row 2"),
    ("fn,lon,lat\np0.tif,0,0\np1.tif,east,0\n", CoordinateError, r"row 1"),
    ("fn,x,y\np0.tif,0,0\n", S2DataError, r"bad\.csv: index lacks column\(s\) lon, lat"),
    ("lat,url\n1,u\n", S2DataError, r"lacks column\(s\) fn, lon"),
    ("", S2DataError, r"bad\.csv: cannot read"),
])
def test_bad_index_is_named(tmp_path: Path, text: str, error: type[Exception], match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(error, match=match):
        read_index(path)
    (tmp_path / "index.csv").write_text(text)
    with pytest.raises(error):
        S2Dataset(tmp_path)


def _damage_pixels(path: Path, kind: str = "random") -> None:
    """Overwrite the compressed pixel data of band 1 (header intact, size unchanged).

    ``kind``: ``random`` bytes, ``zeros`` or ``inverted`` (every bit flipped). Each makes GDAL's LZW
    decoder fail (RasterioIOError); a single flipped bit, by contrast, often decodes to wrong pixels.
    """
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        length = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    size = len(data)
    block = data[offset:offset + length]
    if kind == "random":
        block = np.random.default_rng(0).integers(0, 256, length, dtype=np.uint8).tobytes()
    elif kind == "zeros":
        block = bytes(length)
    else:
        block = bytes(b ^ 0xFF for b in block)
    data[offset:offset + length] = block
    assert len(data) == size
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["random", "zeros", "inverted"])
def test_a_file_that_fails_only_when_its_pixels_are_read_is_skipped(tmp_path: Path, kind: str) -> None:
    make_layout(tmp_path)
    bad = tmp_path / "images" / "patch_1.tif"
    size = bad.stat().st_size
    _damage_pixels(bad, kind)
    assert bad.stat().st_size == size
    assert s2_100k.check_patch(bad) is None  # the header looks fine: only decoding finds it
    with pytest.raises(S2DataError, match="patch_1.tif: unreadable or corrupt"):
        S2Dataset(tmp_path)[5]  # "fail": named at read time
    ds = S2Dataset(tmp_path, on_corrupt="skip")
    assert ds.fns == ["patch_0.tif"]
    assert [fn for fn, _ in ds.skipped] == ["patch_trunc.tif", "patch_3band.tif", "patch_gone.tif",
                                            "patch_junk.tif", "patch_1.tif"]
    assert dict(ds.skipped)["patch_1.tif"].startswith("unreadable or corrupt GeoTIFF")
    for i in range(len(ds)):  # whatever is left loads
        assert ds[i]["image"].shape == (13, 16, 16)


def test_nothing_left_after_skipping_is_an_error(tmp_path: Path) -> None:
    make_layout(tmp_path)
    for n in range(2):
        _damage_pixels(tmp_path / "images" / f"patch_{n}.tif")
    with pytest.raises(S2DataError, match="no usable patch left after skipping 6 of 6 files") as err:
        S2Dataset(tmp_path, on_corrupt="skip")
    message = str(err.value)
    assert message.startswith(f"{tmp_path}: ")  # the root folder
    assert "(first: patch_0.tif: unreadable or corrupt GeoTIFF" in message  # the first reason
