"""S2-100K: Hugging Face download against a loopback hub, the 20 real patches, corrupt files, index checks."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from satclip.data import download as download_mod
from satclip.data import s2_100k
from satclip.data.download import ChecksumError, DownloadError
from satclip.data.s2_100k import S2DataError, S2Dataset, read_index
from satclip.data.s2_100k_download import download_s2_100k, extract_shard, prepare_s2_sample
from satclip.data.sampling import CoordinateError

REPO = "torchgeo/s2-100k"
PER_SHARD = 3  # fake shards hold 3 tiny patches (the real ones 1,000)


# ----------------------------------------------------------------------------------------------
# helpers


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


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeHub:
    """A loopback stand-in for huggingface.co serving ``files`` (repo path -> bytes)."""

    files: dict[str, bytes]
    images: dict[str, bytes]
    advertise: dict[str, str] = field(default_factory=dict)  # repo path -> advertised sha256
    cut_once: set[str] = field(default_factory=set)  # close the connection mid-body the first time
    head_allowed: bool = True
    redirect: bool = False  # answer like the hub: 302 to a CDN path that carries no hash header
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    endpoint: str = ""

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GETs that asked for repo path ``path``."""
        return [rng for method, p, rng in self.requests if method == "GET" and p.endswith("/" + path)]


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    prefix = f"/datasets/{REPO}/resolve/main/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _lookup(self) -> tuple[str, bytes, bool] | None:
            for pre, cdn in ((prefix, False), ("/cdn/", True)):
                if self.path.startswith(pre) and self.path[len(pre):] in hub.files:
                    rel = self.path[len(pre):]
                    return rel, hub.files[rel], cdn
            return None

        def _answer(self, body: bool) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Range")))
            found = self._lookup()
            if found is None:
                self.send_error(404)
                return
            rel, data, cdn = found
            etag = hub.advertise.get(rel, sha(data))
            if hub.redirect and not cdn:
                self.send_response(302)
                self.send_header("Location", f"/cdn/{rel}")
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            rng = self.headers.get("Range")
            if rng:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            if not cdn:
                self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not body:
                return
            if rel in hub.cut_once:
                hub.cut_once.discard(rel)
                self.wfile.write(data[start:start + (len(data) - start) // 2])
                self.close_connection = True  # the client sees fewer bytes than announced
                return
            self.wfile.write(data[start:])

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            if not hub.head_allowed:
                hub.requests.append(("HEAD", self.path, None))
                self.send_error(501)
                return
            self._answer(body=False)

    return Handler


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """Two shards of 3 tiny patches plus index rows for a third, undownloaded shard."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download_mod, "RETRY_PAUSE_S", 0.0)
    src = tmp_path / "hub_src"
    src.mkdir()
    images, rows, files = {}, [], {}
    for k in range(3):
        members = {}
        for j in range(PER_SHARD):
            n = k * PER_SHARD + j
            fn = f"patch_{n}.tif"
            members[fn] = images[fn] = write_tif(src / fn, seed=n)
            rows.append((10.0 * n - 40, -100.0 + 20 * n, f"https://example.invalid/{fn}", fn))
        if k < 2:
            files[f"data/shard-{k:05d}.tar"] = tar_bytes(members)
    # the `lat, lon, url, fn` variant of the upstream index
    files["index.csv"] = pd.DataFrame(rows, columns=["lat", "lon", "url", "fn"]).to_csv(index=False).encode()
    hub = FakeHub(files=files, images=images)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield hub
    server.shutdown()
    server.server_close()


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# ----------------------------------------------------------------------------------------------
# Hugging Face download


def test_download_extracts_normalizes_and_is_idempotent(fake_hub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "s2"
    assert download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False) == root

    index = pd.read_csv(root / "index.csv")
    assert list(index.columns) == ["fn", "lon", "lat"]
    assert list(index.fn) == [f"patch_{n}.tif" for n in range(2 * PER_SHARD)]  # shard 2 dropped
    assert np.allclose(index.lon, [-100.0 + 20 * n for n in range(6)])
    assert np.allclose(index.lat, [10.0 * n - 40 for n in range(6)])
    for fn in index.fn:
        assert (root / "images" / fn).read_bytes() == fake_hub.images[fn]
    for path in ["index.csv", "data/shard-00000.tar", "data/shard-00001.tar"]:
        assert (root / "raw" / path).read_bytes() == fake_hub.files[path]
        assert len(fake_hub.gets(path)) == 1
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.tmp"))

    sample = S2Dataset(root)[4]
    assert sample["image"].shape == (13, 16, 16)
    assert torch.allclose(sample["point"], torch.tensor([-20.0, 0.0]))

    before_requests, before_images = len(fake_hub.requests), mtimes(root / "images")
    before_index = (root / "index.csv").stat().st_mtime_ns
    download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False)
    assert len(fake_hub.requests) == before_requests  # nothing fetched again
    assert mtimes(root / "images") == before_images  # nothing extracted again
    assert (root / "index.csv").stat().st_mtime_ns == before_index

    # the archives may be deleted once extracted: the marker still says the shards are done
    (root / "raw" / "data" / "shard-00000.tar").unlink()
    download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False)
    assert len(fake_hub.requests) == before_requests

    # fewer shards than before: the index lists only the requested shards' patches
    download_s2_100k(root, shards=1, endpoint=fake_hub.endpoint, progress=False)
    assert list(pd.read_csv(root / "index.csv").fn) == [f"patch_{n}.tif" for n in range(PER_SHARD)]
    assert len(fake_hub.requests) == before_requests


@pytest.mark.parametrize("head_allowed, redirect", [(True, False), (False, False), (True, True)],
                         ids=["head", "get-header-only", "hub-redirect"])
def test_wrong_advertised_hash_fails_and_leaves_nothing(fake_hub: FakeHub, tmp_path: Path,
                                                        head_allowed: bool, redirect: bool) -> None:
    fake_hub.head_allowed, fake_hub.redirect = head_allowed, redirect
    fake_hub.advertise["data/shard-00001.tar"] = "0" * 64
    root = tmp_path / "s2"
    with pytest.raises(ChecksumError, match="shard-00001"):
        download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False)
    data = root / "raw" / "data"
    assert (data / "shard-00000.tar").is_file()
    assert not (data / "shard-00001.tar").exists() and not (data / "shard-00001.tar.part").exists()
    assert not (root / "images" / f"patch_{PER_SHARD}.tif").exists()
    assert not (root / "index.csv").exists()


def test_preseeded_partial_file_resumes_with_range(fake_hub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "s2"
    full = fake_hub.files["data/shard-00000.tar"]
    part = root / "raw" / "data" / "shard-00000.tar.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(full[:1000])
    download_s2_100k(root, shards=1, endpoint=fake_hub.endpoint, progress=False)
    assert fake_hub.gets("data/shard-00000.tar") == ["bytes=1000-"]
    assert (root / "raw" / "data" / "shard-00000.tar").read_bytes() == full
    assert len(pd.read_csv(root / "index.csv")) == PER_SHARD


def test_cut_connection_resumes(fake_hub: FakeHub, tmp_path: Path) -> None:
    rel = "data/shard-00001.tar"
    full = fake_hub.files[rel]
    root = tmp_path / "s2"
    fake_hub.cut_once.add(rel)
    with pytest.raises(DownloadError, match="resume"):  # no retry: the partial file stays
        download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False, retries=0)
    half = len(full) // 2
    assert (root / "raw" / (rel + ".part")).stat().st_size == half
    download_s2_100k(root, shards=2, endpoint=fake_hub.endpoint, progress=False, retries=0)
    assert fake_hub.gets(rel) == [None, f"bytes={half}-"]
    assert (root / "raw" / rel).read_bytes() == full

    # with retries (the default) one call rides over the cut
    root2 = tmp_path / "s2b"
    fake_hub.cut_once.add(rel)
    fake_hub.requests.clear()
    download_s2_100k(root2, shards=2, endpoint=fake_hub.endpoint, progress=False)
    assert fake_hub.gets(rel) == [None, f"bytes={half}-"]
    assert (root2 / "raw" / rel).read_bytes() == full
    assert len(pd.read_csv(root2 / "index.csv")) == 2 * PER_SHARD


def test_bad_index_coordinates_fail_before_shards(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.files["index.csv"] = b"fn,lon,lat\npatch_0.tif,10,20\npatch_1.tif,200,20\npatch_2.tif,0,-95\n"
    with pytest.raises(CoordinateError, match=r"index\.csv.*row 1.*row 2"):
        download_s2_100k(tmp_path / "s2", shards=1, endpoint=fake_hub.endpoint, progress=False)
    assert not fake_hub.gets("data/shard-00000.tar")


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
            download_s2_100k(tmp_path, shards=bad, endpoint="http://127.0.0.1:9")


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
