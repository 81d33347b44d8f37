"""LocationEncoderConfig validation and the composed LocationEncoder."""

import dataclasses

import pytest
import torch

from satclip.encoders import cpu, location
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.encoders.positional import POSITIONAL_ENCODINGS
from satclip.encoders.spherical_harmonics import spherical_harmonics


def points(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand(n, generator=g) * 360 - 180, torch.rand(n, generator=g) * 180 - 90], 1)


def test_defaults_are_the_released_architecture():
    cfg = LocationEncoderConfig()
    assert (cfg.encoding, cfg.legendre_polys, cfg.sh_convention, cfg.network) == ("sh", 10, "satclip", "siren")
    assert (cfg.hidden_dim, cfg.num_hidden_layers, cfg.dropout, cfg.embed_dim) == (512, 2, 0.5, 256)
    assert (cfg.w0_initial, cfg.w0) == (30.0, 1.0)


@pytest.mark.parametrize(("change", "match"), [
    (dict(encoding="h3"), "encoding"),
    (dict(sh_convention="condon"), "sh_convention"),
    (dict(network="resnet"), "network"),
    (dict(dtype="float16"), "dtype"),
    (dict(legendre_polys=0), "legendre_polys"),
    (dict(legendre_polys=True), "expected int"),
    (dict(hidden_dim="512"), "expected int"),
    (dict(min_radius=10.0, max_radius=1.0), "min_radius"),
    (dict(dropout=1.0), "dropout"),
    (dict(num_hidden_layers=0), "num_hidden_layers"),
    (dict(embed_dim=-1), "embed_dim"),
    (dict(w0=0.0), "w0"),
])
def test_config_rejects_bad_values(change, match):
    with pytest.raises(ValueError, match=match):
        LocationEncoderConfig(**change)


def test_config_coerces_ints_to_floats_and_round_trips():
    cfg = LocationEncoderConfig(min_radius=1, max_radius=100, dropout=0)
    assert isinstance(cfg.min_radius, float) and isinstance(cfg.dropout, float)
    assert LocationEncoderConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    assert LocationEncoderConfig(network="mlp", num_hidden_layers=0).num_hidden_layers == 0
    with pytest.raises(ValueError, match="unknown location-encoder keys"):
        LocationEncoderConfig.from_dict({"legendre_poly": 10})


@pytest.mark.parametrize("encoding", sorted(POSITIONAL_ENCODINGS))
@pytest.mark.parametrize("network", ["siren", "mlp", "fcnet", "linear"])
def test_every_encoding_and_network(encoding, network):
    cfg = LocationEncoderConfig(encoding=encoding, network=network, legendre_polys=4, frequency_num=3,
                                hidden_dim=16, num_hidden_layers=1, embed_dim=8)
    enc = LocationEncoder.from_config(cfg).eval()
    out = enc(points(5))
    assert out.shape == (5, 8) and enc.embedding_dim == 8 and torch.isfinite(out).all()
    assert out.dtype == torch.float32 and enc.config == cfg


def test_chunked_inference_equals_plain_forward(monkeypatch):
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=6, hidden_dim=32, embed_dim=8)).eval()
    pts = points(3000, seed=1)
    monkeypatch.setattr(cpu, "WORKSPACE_BYTES", 36 * 4 * 1024)  # chunks of 1024 points
    calls = []
    enc.posenc.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    with torch.no_grad():
        chunked = enc(pts)
        plain = enc.nnet(spherical_harmonics(pts, 6))
    assert calls == [1024, 1024, 952]
    torch.testing.assert_close(chunked, plain, rtol=0, atol=1e-6)


def test_float64_and_training():
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=16, embed_dim=4, dtype="float64")
    enc = LocationEncoder.from_config(cfg)
    assert enc.dtype == torch.float64
    out = enc.train()(points(9))  # float32 coordinates are cast
    assert out.dtype == torch.float64
    out.square().sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    coords = points(3).double().requires_grad_(True)
    enc.eval()(coords).sum().backward()
    assert torch.isfinite(coords.grad).all()


def test_feature_buffer_is_reused_per_thread_and_released():
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=5, hidden_dim=8, embed_dim=4)).eval()
    pts = points(100, seed=2)
    seen = []
    enc.posenc.register_forward_hook(lambda module, args, output: seen.append(output.data_ptr()))
    with torch.no_grad():
        first, second = enc(pts), enc(pts)
        torch.testing.assert_close(first, second, rtol=0, atol=0)
        assert seen[0] == seen[1]  # same buffer
        location.release_workspace()
        assert getattr(cpu._workspace, "buffer", None) is None
        torch.testing.assert_close(enc(pts), first, rtol=0, atol=0)


def test_reentrant_calls_do_not_share_the_buffer():
    torch.manual_seed(0)
    cfg = LocationEncoderConfig(legendre_polys=5, hidden_dim=8, embed_dim=4)
    outer, inner = LocationEncoder.from_config(cfg).eval(), LocationEncoder.from_config(cfg).eval()
    pts, other = points(50, seed=3), points(50, seed=4)
    with torch.no_grad():
        expected = outer(pts)
        results = []

        def hook(module, args, output):  # runs between outer's harmonics and outer's network
            results.append(inner(other))

        outer.posenc.register_forward_hook(hook)
        torch.testing.assert_close(outer(pts), expected, rtol=0, atol=0)
        torch.testing.assert_close(results[0], inner(other), rtol=0, atol=0)


def test_workspace_made_under_inference_mode_is_not_reused_outside_it():
    """The extract stage embeds under inference_mode, the reports under no_grad, in one process."""
    torch.manual_seed(0)
    enc = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=5, hidden_dim=8, embed_dim=4)).eval()
    pts = points(50, seed=3)
    with torch.inference_mode():
        first = enc(pts).clone()
    with torch.no_grad():
        torch.testing.assert_close(enc(pts), first, rtol=0, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(enc(pts), first, rtol=0, atol=0)
