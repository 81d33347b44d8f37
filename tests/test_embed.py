"""The embedding library: encoder specs, coordinate columns, streaming, validation, metadata."""

import dataclasses
import hashlib
import json
import struct
import zipfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from satclip import embed
from satclip.cli import main
from satclip.embed import (
    EmbedError,
    ResolvedEncoder,
    embed_coordinates,
    embed_file,
    find_coordinate_columns,
    read_metadata,
    resolve_encoder,
)
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.encoders.spherical_harmonics import spherical_harmonics

CITIES = "name,lat,lon\nParis,48.8566,2.3522\nNew York,40.7128,-74.006\nSydney,-33.8688,151.2093\n" \
         "Nairobi,-1.2921,36.8219\nLima,-12.0464,-77.0428\nReykjavik,64.1466,-21.9426\nSuva,-18.1416,178.4419\n"


@pytest.fixture
def cities(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_text(CITIES)
    return path


def expected_sh(path, L=10):
    df = pd.read_csv(path)
    return spherical_harmonics(torch.tensor(df[["lon", "lat"]].to_numpy()), L).numpy()


def test_find_coordinate_columns():
    assert find_coordinate_columns(["id", "Latitude", "LONGITUDE"]) == ("LONGITUDE", "Latitude")
    assert find_coordinate_columns(["lon", "lat"]) == ("lon", "lat")
    with pytest.raises(EmbedError, match="no latitude column"):
        find_coordinate_columns(["lon", "y"])
    with pytest.raises(EmbedError, match="ambiguous longitude"):
        find_coordinate_columns(["lon", "longitude", "lat"])


def test_resolve_baselines():
    pts = torch.tensor([[10.0, 20.0], [-30.0, 40.0]], dtype=torch.float64)
    raw = resolve_encoder("raw")
    assert raw.embedding_dim == 2 and raw.metadata["kind"] == "baseline"
    np.testing.assert_allclose(embed_coordinates(raw.module, pts), pts.numpy().astype(np.float32))
    assert resolve_encoder("wrap").embedding_dim == 4
    sh = resolve_encoder("sh:7:orthonormal", dtype="float64")
    np.testing.assert_allclose(embed_coordinates(sh.module, pts), spherical_harmonics(pts, 7, "orthonormal").float())
    assert resolve_encoder("sh:5").module(pts).dtype == torch.float32  # computed in the requested dtype
    assert resolve_encoder("sh:5", dtype="float64").module(pts.float()).dtype == torch.float64
    for bad in ("sh:0", "sh:10:weird", "sh:x"):
        with pytest.raises(EmbedError, match="bad encoder"):
            resolve_encoder(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_encoder("no-such-encoder")


def test_sh_features_of_a_hand_written_csv(cities, tmp_path):
    out = tmp_path / "out.parquet"
    summary = embed_file("sh:10", cities, out)
    assert (summary.rows_read, summary.rows_written, summary.rows_dropped, summary.embedding_dim) == (7, 7, 0, 100)
    df = pd.read_parquet(out)
    assert list(df.columns[:3]) == ["name", "lat", "lon"] and list(df.columns[3:]) == [f"emb_{i}" for i in range(100)]
    assert df["name"].tolist()[0] == "Paris" and df["emb_0"].dtype == np.float32
    np.testing.assert_allclose(df.iloc[:, 3:].to_numpy(), expected_sh(cities), atol=1e-5)
    meta = read_metadata(out)
    assert meta["encoder"] == "sh:10" and meta["rows"] == 7 and meta["dropped_rows"] == 0
    assert meta["satclip_version"] and meta["coordinate_columns"] == ["lon", "lat"]
    assert json.loads(pq.read_schema(out).metadata[b"satclip"])["encoder"] == "sh:10"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cities.csv", "out.parquet"]  # no temporary left


def test_streams_batches_in_order_and_parquet_input(cities, tmp_path):
    src = tmp_path / "pts.parquet"
    df = pd.read_csv(cities).rename(columns={"lon": "Longitude", "lat": "LATITUDE"})
    df["lon_int"] = np.arange(len(df))
    df.to_parquet(src)
    out = tmp_path / "out.parquet"
    embed_file("sh:4", src, out, batch_size=2)
    got = pd.read_parquet(out)
    assert got["name"].tolist() == df["name"].tolist() and got["lon_int"].tolist() == list(range(7))
    pts = torch.tensor(df[["Longitude", "LATITUDE"]].to_numpy())
    np.testing.assert_allclose(got.filter(like="emb_").to_numpy(), spherical_harmonics(pts, 4).numpy(), atol=1e-6)


def test_checkpoint_encoder_records_its_hash(cities, tmp_path):
    torch.manual_seed(0)
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=16, embed_dim=6)
    enc = LocationEncoder.from_config(cfg).eval()
    ckpt = tmp_path / "ours.ckpt"
    torch.save({"state_dict": {f"model.location.{k}": v for k, v in enc.state_dict().items()},
                "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, ckpt)
    out = tmp_path / "out.parquet"
    embed_file(str(ckpt), cities, out, batch_size=3)
    meta = read_metadata(out)
    assert meta["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert meta["kind"] == "checkpoint" and meta["location_config"]["legendre_polys"] == 5
    df = pd.read_csv(cities)
    with torch.no_grad():
        expected = enc(torch.tensor(df[["lon", "lat"]].to_numpy(), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(pd.read_parquet(out).filter(like="emb_").to_numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(("row", "match"), [
    ("Bad,,10.0", "row 1: lon='10.0', lat='': latitude missing"),
    ("Bad,95.5,10.0", "latitude outside"),
    ("Bad,10.0,-181", "longitude outside"),
    ("Bad,abc,10", "latitude missing, infinite or not a number"),
    ("Bad,1.0,inf", "longitude missing, infinite"),
])
def test_invalid_rows_fail_with_the_row_and_leave_no_file(tmp_path, row, match):
    src = tmp_path / "pts.csv"
    src.write_text(f"name,lat,lon\nOk,1.0,2.0\n{row}\n")
    out = tmp_path / "out.parquet"
    with pytest.raises(EmbedError, match=match):
        embed_file("wrap", src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pts.csv"]


def test_failure_keeps_a_previous_output(cities, tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous")
    bad = tmp_path / "bad.csv"
    bad.write_text(CITIES + "Bad,200,0\n")
    with pytest.raises(EmbedError, match="row 7"):
        embed_file("raw", bad, out, batch_size=3)  # the bad row is in the third batch
    assert out.read_bytes() == b"previous" and not list(tmp_path.glob(".*tmp"))


def test_drop_invalid(tmp_path):
    src = tmp_path / "pts.csv"
    src.write_text("id,lat,lon\n0,1,2\n1,,3\n2,3,4\n3,91,0\n4,5,6\n")
    out = tmp_path / "out.parquet"
    summary = embed_file("raw", src, out, drop_invalid=True, batch_size=2)
    assert (summary.rows_read, summary.rows_written, summary.rows_dropped) == (5, 3, 2)
    df = pd.read_parquet(out)
    assert df["id"].tolist() == [0, 2, 4] and df["lat"].tolist() == [1.0, 3.0, 5.0]
    assert df["emb_0"].tolist() == [2.0, 4.0, 6.0]
    assert read_metadata(out)["dropped_rows"] == 2


@pytest.mark.parametrize(("content", "match"), [
    ("name,lat,lon\n", "no rows"),
    ("name,lat,lon\nA,,\nB,100,0\n", "all 2 rows have invalid coordinates"),
    ("name,y,x\nA,1,2\n", "no longitude column"),
    ("lat,lon,emb_0\n1,2,3\n", "embedding-like columns"),
])
def test_other_bad_inputs(tmp_path, content, match):
    src = tmp_path / "pts.csv"
    src.write_text(content)
    with pytest.raises(EmbedError, match=match):
        embed_file("raw", src, tmp_path / "out.parquet", drop_invalid=True)
    assert not (tmp_path / "out.parquet").exists()


def test_bad_arguments(cities, tmp_path):
    with pytest.raises(EmbedError, match="not found"):
        embed_file("raw", tmp_path / "missing.csv", tmp_path / "o.parquet")
    with pytest.raises(EmbedError, match="overwrite the input"):
        embed_file("raw", cities, cities)
    with pytest.raises(EmbedError, match="batch size"):
        embed_file("raw", cities, tmp_path / "o.parquet", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(EmbedError, match="CUDA is not available"):
            embed_file("raw", cities, tmp_path / "o.parquet", device="cuda")


# ---------------------------------------------------------------------------------------------
# Corrupt checkpoints, non-finite embeddings, CSV columns whose type changes after the first block
# ---------------------------------------------------------------------------------------------


def corrupt_tensor_bytes(path, n: int = 64) -> None:
    """Overwrite ``n`` bytes in the middle of the largest tensor of a torch zip checkpoint (size kept)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    middle = info.header_offset + 30 + name_len + extra_len + (info.file_size - n) // 2
    raw[middle: middle + n] = b"\xff" * n  # NaN as float32
    path.write_bytes(bytes(raw))


def write_checkpoint(path, nan: bool = False):
    torch.manual_seed(0)
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=16, embed_dim=6)
    state = {f"model.location.{k}": v.clone() for k, v in LocationEncoder.from_config(cfg).state_dict().items()}
    if nan:
        state["model.location.nnet.last_layer.weight"][0, 0] = float("nan")
    torch.save({"state_dict": state, "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, path)
    return path


@pytest.mark.parametrize("damage", ["corrupt-bytes", "nan-weights"])
def test_embed_refuses_a_damaged_checkpoint_and_writes_nothing(cities, tmp_path, capsys, damage):
    ckpt = write_checkpoint(tmp_path / "model.ckpt", nan=damage == "nan-weights")
    if damage == "corrupt-bytes":
        size = ckpt.stat().st_size
        corrupt_tensor_bytes(ckpt)
        assert ckpt.stat().st_size == size
    out = tmp_path / "out.parquet"
    rc = main(["embed", "--encoder", str(ckpt), "--input", str(cities), "--output", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("satclip embed: error: ") and str(ckpt) in err and len(err.strip().splitlines()) == 1
    assert ("corrupt checkpoint" if damage == "corrupt-bytes" else "non-finite weights") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cities.csv", "model.ckpt"]  # no output, no temporary


class NaNAt(torch.nn.Module):
    """Raw (lon, lat) except a NaN embedding for points with longitude ``lon``."""

    embedding_dim = 2

    def __init__(self, lon: float) -> None:
        super().__init__()
        self.lon = lon

    def forward(self, coords):
        out = coords.clone()
        out[coords[:, 0] == self.lon] = float("nan")
        return out


def test_non_finite_embeddings_fail_naming_encoder_and_row_and_leave_no_file(tmp_path):
    src = tmp_path / "pts.csv"
    src.write_text("id,lat,lon\n0,1,2\n1,,3\n2,3,4\n3,5,6\n4,7,8\n")
    out = tmp_path / "out.parquet"
    encoder = ResolvedEncoder(NaNAt(6.0), 2, {"encoder": "nan-at-6"})
    # row 1 is dropped (no latitude); the NaN is row 3, in the second batch after a batch was written
    with pytest.raises(EmbedError, match=r"encoder 'nan-at-6' produced non-finite embeddings .* first at row 3 "
                                         r"\(lon=6.0, lat=5.0\); nothing was written"):
        embed_file(encoder, src, out, batch_size=3, drop_invalid=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pts.csv"]


def test_csv_column_turning_to_text_after_the_first_block(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "CSV_BLOCK_SIZE", 1 << 10)  # a few hundred rows per block instead of 16 MiB
    n = 3000
    ids = [str(i) for i in range(n - 100)] + [f"site-{i}" for i in range(100)]  # text from row 2900 on
    src = tmp_path / "pts.csv"
    src.write_text("id,count,lat,lon\n" + "".join(f"{v},{i},{i % 90},{i % 180 - 90}\n" for i, v in enumerate(ids)))
    out = tmp_path / "out.parquet"
    summary = embed_file("raw", src, out, batch_size=500, progress=False)
    assert summary.rows_written == n
    df = pd.read_parquet(out)
    assert df["id"].tolist() == ids  # every value as written, as text
    assert df["count"].tolist() == list(range(n)) and df["count"].dtype == np.int64  # a consistent column keeps its type
    assert df["emb_1"].tolist() == [float(i % 90) for i in range(n)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "pts.csv"]
