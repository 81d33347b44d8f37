"""Loading official SatCLIP checkpoints, ours, and GeoCLIP; parity with torchgeo's SatCLIP."""

import dataclasses
import importlib
import importlib.util
import math
import re
import struct
import subprocess
import sys
import types
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from satclip.encoders import pretrained
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.encoders.pretrained import (
    OFFICIAL_CHECKPOINTS,
    CheckpointError,
    equal_earth,
    load_geoclip,
    load_location_encoder,
    official_checkpoint_url,
    read_location_checkpoint,
)

# hyper_parameters of a released checkpoint: SatCLIPLightningModule's arguments plus the extra
# keys the released files carry (``satclip/main.py`` of microsoft/satclip@1ead106)
OFFICIAL_HPARAMS = dict(embed_dim=256, image_resolution=224, vision_layers="moco_resnet18", vision_width=768,
                        vision_patch_size=32, in_channels=13, le_type="sphericalharmonics", pe_type="siren",
                        frequency_num=16, max_radius=0.01, min_radius=1e-5, legendre_polys=10,
                        harmonics_calculation="analytic", sh_embedding_dims=32, learning_rate=1e-4,
                        weight_decay=0.01, num_hidden_layers=2, capacity=512, eval_downstream=True,
                        air_temp_data_path="/data/air_temp.csv", election_data_path="/data/election.csv")


def lonlat(n: int, seed: int = 0, max_lat: float = 89.95) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180,
                        torch.rand(n, generator=g, dtype=torch.float64) * 2 * max_lat - max_lat], 1)


def torchgeo_satclip(L: int, seed: int):
    """Torchgeo's SatCLIP location encoder with random float64 weights (float64 SH constants)."""
    from torchgeo.models.satclip import SatCLIP

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # else its SH constants stay rounded to float32
    try:
        torch.manual_seed(seed)
        return SatCLIP(legendre_polys=L, capacity=512, embed_dim=256, num_hidden_layers=2).eval()
    finally:
        torch.set_default_dtype(previous)


def write_official(path: Path, nnet_state: dict, hparams: dict | None = None, duplicate: bool = True,
                   location_prefix: bool = True) -> Path:
    """A Lightning checkpoint laid out like the released ones (image tower, duplicated nnet keys)."""
    state = {"model.visual.conv1.weight": torch.zeros(4, 13, 3, 3), "model.logit_scale": torch.tensor(2.659)}
    for key, value in nnet_state.items():
        if location_prefix:
            state[f"model.location.nnet.{key}"] = value.double()
        if duplicate or not location_prefix:
            state[f"model.nnet.{key}"] = value.double()
    ckpt = {"epoch": 499, "global_step": 1, "pytorch-lightning_version": "2.0.0", "state_dict": state}
    if hparams is not None:
        ckpt["hyper_parameters"] = hparams
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("L", [10, 40])
def test_official_checkpoint_matches_torchgeo_satclip(tmp_path, L):
    reference = torchgeo_satclip(L, seed=L)
    ckpt = write_official(tmp_path / f"l{L}.ckpt", reference.nnet.state_dict(), {**OFFICIAL_HPARAMS, "legendre_polys": L})
    ours = load_location_encoder(ckpt, dtype="float64")
    assert not ours.training and ours.dtype == torch.float64 and ours.embedding_dim == 256
    pts = lonlat(1500, seed=L)  # torchgeo clamps |lat| to 89.95 degrees; stay inside
    with torch.no_grad():
        expected = reference(pts)
        got = ours(pts)
    assert (got - expected).abs().max().item() <= 1e-5
    assert (got - expected).abs().max().item() <= 1e-9  # in practice: float64 round-off
    with torch.no_grad():  # default dtype float32: same embeddings to float32 accuracy
        got32 = load_location_encoder(ckpt)(pts.float())
    assert got32.dtype == torch.float32
    assert ((got32.double() - expected).abs().max() / expected.abs().max()).item() < 1e-3


def test_official_layout_variants(tmp_path):
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=4, hidden_dim=16, embed_dim=8)).eval()
    nnet_state = enc.nnet.state_dict()
    pts = lonlat(20).float()
    expected = enc(pts)
    hp = {**OFFICIAL_HPARAMS, "legendre_polys": 4, "capacity": 16, "embed_dim": 8}
    only_model_nnet = write_official(tmp_path / "a.ckpt", nnet_state, hp, location_prefix=False)
    no_hparams = write_official(tmp_path / "b.ckpt", nnet_state, None)
    for path in (only_model_nnet, no_hparams):
        torch.testing.assert_close(load_location_encoder(path)(pts), expected, rtol=0, atol=1e-6)
    config, weights, layout = read_location_checkpoint(no_hparams)
    assert layout == "weights-only" and config.legendre_polys == 4 and config.hidden_dim == 16
    assert set(weights) == set(enc.state_dict())
    assert read_location_checkpoint(only_model_nnet)[2] == "official"


def test_our_checkpoint_round_trip(tmp_path):
    cfg = LocationEncoderConfig(encoding="spheremplus", frequency_num=4, network="fcnet", hidden_dim=16,
                                num_hidden_layers=2, embed_dim=6, dtype="float64")
    torch.manual_seed(1)
    enc = LocationEncoder.from_config(cfg).eval()
    state = {f"model.location.{k}": v for k, v in enc.state_dict().items()}
    state["model.image.head.weight"] = torch.zeros(3, 3)
    path = tmp_path / "ours.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"location": dataclasses.asdict(cfg), "lr": 1e-3}}, path)
    loaded = load_location_encoder(path)
    assert loaded.config == cfg and loaded.dtype == torch.float64
    pts = lonlat(30)
    torch.testing.assert_close(loaded(pts), enc(pts), rtol=0, atol=0)
    assert load_location_encoder(path, dtype="float32").dtype == torch.float32

    sh = LocationEncoderConfig(legendre_polys=3, sh_convention="orthonormal", network="mlp", hidden_dim=8, embed_dim=4)
    enc2 = LocationEncoder.from_config(sh).eval()
    torch.save({"state_dict": {f"model.location.{k}": v for k, v in enc2.state_dict().items()},
                "hyper_parameters": {"location": dataclasses.asdict(sh)}}, path)
    torch.testing.assert_close(load_location_encoder(path)(pts.float()), enc2(pts.float()))


def test_bad_checkpoints(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_location_encoder(garbage)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_location_encoder(tmp_path / "missing.ckpt")
    torch.manual_seed(0)
    l10 = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=10, hidden_dim=16, embed_dim=8))
    mismatch = write_official(tmp_path / "m.ckpt", l10.nnet.state_dict(),
                              {**OFFICIAL_HPARAMS, "legendre_polys": 40, "capacity": 16, "embed_dim": 8})
    with pytest.raises(CheckpointError, match=r"architecture mismatch.*nnet.layers.0.weight.*\(16, 100\)"):
        load_location_encoder(mismatch)
    for bad, match in ((dict(le_type="grid"), "not supported"), (dict(harmonics_calculation="closed-form"), "closed-form")):
        path = write_official(tmp_path / "x.ckpt", l10.nnet.state_dict(), {**OFFICIAL_HPARAMS, **bad})
        with pytest.raises(CheckpointError, match=match):
            load_location_encoder(path)
    empty = tmp_path / "empty.ckpt"
    torch.save({"state_dict": {"model.visual.w": torch.zeros(1)}}, empty)
    with pytest.raises(CheckpointError, match="no location-encoder weights"):
        load_location_encoder(empty)


def test_official_name_downloads_once_into_the_hub_cache(hub, tmp_path, monkeypatch):
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=10, hidden_dim=16, embed_dim=8)).eval()
    name = "satclip-resnet18-l10"
    entry = OFFICIAL_CHECKPOINTS[name]
    served = write_official(tmp_path / "served.ckpt", enc.nnet.state_dict(), {**OFFICIAL_HPARAMS, "capacity": 16, "embed_dim": 8})
    hub.add(entry.repo_id, entry.filename, served.read_bytes(), repo_type="model")
    assert official_checkpoint_url(name).endswith(f"/microsoft/SatCLIP-ResNet18-L10/resolve/main/{entry.filename}")
    loaded = load_location_encoder(name, progress=False)
    pts = lonlat(10).float()
    torch.testing.assert_close(loaded(pts), enc(pts), rtol=0, atol=1e-6)
    cached = [p for p in (tmp_path / "hf-cache").rglob(entry.filename)]
    assert len(cached) == 1 and cached[0].read_bytes() == served.read_bytes()
    assert f"models/{entry.repo_id}@{hub.commit}/{entry.filename}" in (tmp_path / "downloads.lock").read_text()
    hub.close()
    load_location_encoder(name.upper(), progress=False)  # server gone: the lock's commit, from the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_location_encoder(name, progress=False)


def test_official_registry():
    assert sorted(OFFICIAL_CHECKPOINTS) == sorted(f"satclip-{b}-l{L}" for b in ("resnet18", "resnet50", "vit16")
                                                  for L in (10, 40))
    assert OFFICIAL_CHECKPOINTS["satclip-vit16-l40"].revision == "0ef2acc0b91d3c8cfdf4a0cc03207095989287ab"
    with pytest.raises(CheckpointError, match="unknown official checkpoint"):
        official_checkpoint_url("satclip-vit32-l10")


# ---------------------------------------------------------------------------------------------
# GeoCLIP
# ---------------------------------------------------------------------------------------------

needs_geoclip = pytest.mark.skipif(importlib.util.find_spec("geoclip") is None, reason="geoclip wheel not installed")


def test_equal_earth_takes_lon_then_lat():
    # x spans [-1, 1] at lon = -+180 on the equator; y is the pole's height: (lat, lon) swapped
    # inputs would map (180, 0) to (0, 0) instead.
    xy = equal_earth(torch.tensor([180.0, -180.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 90.0, -90.0]))
    theta = math.pi / 3  # asin(sqrt(3)/2 * sin 90)
    y_pole = (1.340264 * theta - 0.081106 * theta**3 + 0.000893 * theta**7 + 0.003796 * theta**9) * 66.50336 / 180
    torch.testing.assert_close(xy, torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, y_pole], [0.0, -y_pole]]),
                               rtol=0, atol=1e-5)


@needs_geoclip
def test_geoclip_loads_without_importing_the_package():
    # in a fresh interpreter: other tests (torchgeo, timm) may have imported transformers here
    code = ("import sys; from satclip.encoders.pretrained import load_geoclip; load_geoclip(); "
            "print('geoclip' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    model = load_geoclip()
    pts = lonlat(64, seed=3).float()
    with torch.no_grad():
        out = model(pts)
        again = load_geoclip()(pts)
    assert out.shape == (64, 512) and model.embedding_dim == 512 and not model.training
    torch.testing.assert_close(out, again, rtol=0, atol=0)  # deterministic
    assert load_location_encoder("geoclip").embedding_dim == 512


@needs_geoclip
def test_geoclip_matches_the_wheels_own_location_encoder():
    """The wheel's module, given (lat, lon), against ours given (lon, lat)."""
    root = Path(importlib.util.find_spec("geoclip").submodule_search_locations[0]) / "model"
    package = types.ModuleType("_geoclip_reference")
    package.__path__ = [str(root)]  # skip geoclip/__init__.py (it imports transformers)
    sys.modules[package.__name__] = package
    try:
        with warnings.catch_warnings():  # its rff module uses the deprecated torch.jit.script
            warnings.simplefilter("ignore")
            reference_module = importlib.import_module(f"{package.__name__}.location_encoder")
        reference = reference_module.LocationEncoder().eval()
    finally:
        for name in [n for n in sys.modules if n.startswith(package.__name__)]:
            del sys.modules[name]
    ours = load_geoclip()
    pts = lonlat(500, seed=4, max_lat=90.0).float()
    with torch.no_grad():
        expected = reference(pts.flip(1))  # GeoCLIP's own order: (lat, lon)
        got = ours(pts)
        swapped = ours(pts.flip(1))
    # float32 phases up to ~4e3 rad (sigma = 256) and GeoCLIP's float32 sqrt(3) limit agreement
    assert (got - expected).abs().max() < 1e-4
    assert (swapped - expected).abs().max() > 1e-2  # the order matters


def test_geoclip_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps geoclip"):
        load_geoclip()


# ---------------------------------------------------------------------------------------------
# Corrupt and non-finite checkpoints
# ---------------------------------------------------------------------------------------------


def corrupt_tensor_bytes(path: Path, n: int = 64) -> str:
    """Overwrite ``n`` bytes in the middle of the largest tensor stored in a torch zip checkpoint.

    The size stays the same and torch.load still succeeds; only the member's CRC no longer
    matches. 0xff bytes are NaN as float32 and float64. Returns the member's name.
    """
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the member's data (stored, not compressed)
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size >= n
    middle = start + (info.file_size - n) // 2
    raw[middle: middle + n] = b"\xff" * n
    path.write_bytes(bytes(raw))
    return info.filename


def write_ours(path: Path, nan_key: str | None = None) -> Path:
    """A checkpoint in this project's layout; ``nan_key``: that weight holds a NaN (saved validly)."""
    torch.manual_seed(0)
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=16, embed_dim=6)
    state = {f"model.location.{k}": v.clone() for k, v in LocationEncoder.from_config(cfg).state_dict().items()}
    if nan_key is not None:
        state[nan_key].view(-1)[3] = float("nan")
    torch.save({"state_dict": state, "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, path)
    return path


def test_corrupt_checkpoint_is_refused_naming_the_file(tmp_path):
    ours = write_ours(tmp_path / "ours.ckpt")
    pretrained.verify_checkpoint_file(ours)  # intact: passes
    size = ours.stat().st_size
    member = corrupt_tensor_bytes(ours)
    assert ours.stat().st_size == size
    torch.load(ours, map_location="cpu", weights_only=True)  # torch itself does not notice
    for load in (load_location_encoder, read_location_checkpoint, pretrained.verify_checkpoint_file):
        with pytest.raises(CheckpointError, match=rf"{re.escape(str(ours))}: corrupt checkpoint.*{member}.*CRC"):
            load(ours)
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=4, hidden_dim=16, embed_dim=8))
    official = write_official(tmp_path / "official.ckpt", enc.nnet.state_dict(),
                              {**OFFICIAL_HPARAMS, "legendre_polys": 4, "capacity": 16, "embed_dim": 8})
    corrupt_tensor_bytes(official)
    with pytest.raises(CheckpointError, match="official.ckpt: corrupt checkpoint"):
        load_location_encoder(official)
    geoclip_like = tmp_path / "geoclip.pth"  # GeoCLIP weights are read through the same loader
    torch.save({"LocEnc0.head.0.weight": torch.randn(64, 32)}, geoclip_like)
    corrupt_tensor_bytes(geoclip_like)
    with pytest.raises(CheckpointError, match="geoclip.pth: corrupt checkpoint"):
        load_geoclip(weights=geoclip_like)


def test_truncated_and_legacy_checkpoints_are_clear_errors(tmp_path):
    ours = write_ours(tmp_path / "ours.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ours.read_bytes()[: ours.stat().st_size // 2])
    legacy = tmp_path / "legacy.pt"
    torch.save({"state_dict": {}}, legacy, _use_new_zipfile_serialization=False)
    for path in (truncated, legacy):
        with pytest.raises(CheckpointError, match=rf"{path.name}: not a readable PyTorch checkpoint \(not a zip"):
            load_location_encoder(path)


def test_non_finite_weights_are_refused(tmp_path):
    path = write_ours(tmp_path / "nan.ckpt", nan_key="model.location.nnet.layers.0.weight")
    with pytest.raises(CheckpointError, match=r"nan.ckpt: non-finite weights .* nnet.layers.0.weight"):
        load_location_encoder(path)
    with pytest.raises(CheckpointError, match="non-finite weights"):
        read_location_checkpoint(path)
    geoclip_like = tmp_path / "geoclip.pth"
    torch.save({"LocEnc0.head.0.weight": torch.tensor([1.0, float("inf")])}, geoclip_like)
    with pytest.raises(CheckpointError, match="geoclip.pth: non-finite weights .* LocEnc0.head.0.weight"):
        load_geoclip(weights=geoclip_like)


def test_missing_and_unexpected_keys_name_the_file(tmp_path):
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=16, embed_dim=6)
    state = {f"model.location.{k}": v for k, v in LocationEncoder.from_config(cfg).state_dict().items()}
    missing = dict(state)
    del missing["model.location.nnet.last_layer.weight"]
    extra = {**state, "model.location.nnet.spare.weight": torch.zeros(2)}
    for name, weights, match in (("missing.ckpt", missing, "missing nnet.last_layer.weight"),
                                 ("extra.ckpt", extra, "unexpected nnet.spare.weight")):
        torch.save({"state_dict": weights, "hyper_parameters": {"location": dataclasses.asdict(cfg)}},
                   tmp_path / name)
        with pytest.raises(CheckpointError, match=rf"{name}: architecture mismatch.*{match}"):
            load_location_encoder(tmp_path / name)
