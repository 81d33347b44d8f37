"""Spherical harmonics (both conventions) and the coordinate encodings."""

import math

import numpy as np
import pytest
import torch
from scipy.special import roots_legendre, sph_harm_y

from satclip.encoders.coordinates import geometric_scales
from satclip.encoders.cpu import empty_features
from satclip.encoders.positional import POSITIONAL_ENCODINGS, build_positional_encoding
from satclip.encoders.spherical_harmonics import SphericalHarmonics, spherical_harmonics

RAD = 180.0 / math.pi  # a radius of RAD degrees makes coord / r the coordinate in radians


def random_points(n: int, seed: int = 0, dtype: torch.dtype = torch.float64, max_lat: float = 90.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=torch.float64) * 360.0 - 180.0
    lat = torch.rand(n, generator=g, dtype=torch.float64) * 2 * max_lat - max_lat
    return torch.stack([lon, lat], dim=1).to(dtype)


def real_sh_scipy(L: int, lonlat: np.ndarray) -> np.ndarray:
    """Textbook real SH from scipy's complex ones: (N, L^2), column l^2 + l + m."""
    theta = np.radians(90.0 - lonlat[:, 1])[:, None]  # colatitude from the north pole
    phi = np.mod(np.radians(lonlat[:, 0]), 2 * np.pi)[:, None]
    ls = np.concatenate([np.full(2 * deg + 1, deg) for deg in range(L)])
    ms = np.concatenate([np.arange(-deg, deg + 1) for deg in range(L)])
    y = sph_harm_y(ls[None, :], np.abs(ms)[None, :], theta, phi)
    sign = (-1.0) ** np.abs(ms)  # scipy includes the Condon-Shortley phase; real SH cancel it
    return np.where(ms > 0, math.sqrt(2) * sign * y.real, np.where(ms < 0, math.sqrt(2) * sign * y.imag, y.real))


def test_orthonormal_matches_scipy_for_all_degrees_below_20():
    pts = random_points(300, seed=1)
    ours = spherical_harmonics(pts, 20, "orthonormal").numpy()
    np.testing.assert_allclose(ours, real_sh_scipy(20, pts.numpy()), rtol=0, atol=1e-12)


def test_orthonormal_matches_scipy_at_degree_99():
    pts = random_points(40, seed=2)
    ours = spherical_harmonics(pts, 100, "orthonormal").numpy()
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, real_sh_scipy(100, pts.numpy()), rtol=0, atol=1e-10)


def test_orthonormality_by_quadrature():
    L = 20
    x, w = roots_legendre(L + 1)  # exact for polynomials in cos(theta) of degree <= 2L + 1
    phi = np.arange(2 * L + 1) * 2 * np.pi / (2 * L + 1)  # exact for trigonometric degree <= 2L
    lat = np.degrees(np.arcsin(x))
    lon = np.degrees(phi) - 180.0
    grid = torch.tensor(np.stack(np.meshgrid(lon, lat), axis=-1).reshape(-1, 2))
    weights = torch.tensor(np.repeat(w, len(phi)) * 2 * np.pi / len(phi))
    for convention, scale in (("orthonormal", 1.0), ("satclip", None)):
        y = spherical_harmonics(grid, L, convention)
        gram = (y * weights[:, None]).T @ y
        expected = torch.eye(L * L, dtype=torch.float64)
        if scale is None:  # satclip: m = 0 columns are pi times the orthonormal ones
            m0 = torch.tensor([deg * deg + deg for deg in range(L)])
            expected[m0, m0] = math.pi**2
        torch.testing.assert_close(gram, expected, rtol=0, atol=1e-12)


def test_satclip_is_signed_orthonormal_with_pi_on_m0():
    pts = random_points(200, seed=3)
    L = 12
    ortho = spherical_harmonics(pts, L, "orthonormal")
    sat = spherical_harmonics(pts, L, "satclip")
    factor = torch.tensor([(-1.0) ** deg * (math.pi if m == 0 else 1.0) for deg in range(L) for m in range(-deg, deg + 1)],
                          dtype=torch.float64)
    torch.testing.assert_close(sat, ortho * factor, rtol=0, atol=1e-12)


def test_values_by_hand():
    y = spherical_harmonics(torch.tensor([[0.0, 0.0], [90.0, 30.0]], dtype=torch.float64), 2, "satclip")
    c1 = math.sqrt(3 / (4 * math.pi))
    # Y_00 = pi / sqrt(4 pi); at (0, 0): theta = 90 deg (x = 0), phi = 180 deg (cos = -1, sin = 0)
    assert y[0, 0].item() == pytest.approx(math.pi / math.sqrt(4 * math.pi), abs=1e-15)
    assert y[0].tolist() == pytest.approx([math.sqrt(math.pi) / 2, 0.0, 0.0, -c1], abs=1e-15)
    # at (90, 30): x = -sin 30 = -1/2, s = cos 30, phi = 270 deg (cos = 0, sin = -1)
    s = math.cos(math.radians(30))
    assert y[1].tolist() == pytest.approx([math.sqrt(math.pi) / 2, -c1 * s, -math.pi * c1 / 2, 0.0], abs=1e-15)
    ortho = spherical_harmonics(torch.tensor([[90.0, 30.0]], dtype=torch.float64), 2, "orthonormal")
    assert ortho[0].tolist() == pytest.approx([1 / math.sqrt(4 * math.pi), c1 * s, c1 / 2, 0.0], abs=1e-15)


@pytest.mark.parametrize("convention", ["satclip", "orthonormal"])
def test_continuous_across_the_antimeridian(convention):
    lat = torch.linspace(-89.0, 89.0, 41, dtype=torch.float64)
    east = torch.stack([torch.full_like(lat, 180.0), lat], 1)
    west = torch.stack([torch.full_like(lat, -180.0), lat], 1)
    torch.testing.assert_close(spherical_harmonics(east, 40, convention), spherical_harmonics(west, 40, convention),
                               rtol=0, atol=1e-11)
    eps = 1e-6
    near_e = spherical_harmonics(east - torch.tensor([eps, 0.0]), 40, convention)
    near_w = spherical_harmonics(west + torch.tensor([eps, 0.0]), 40, convention)
    assert (near_e - near_w).abs().max() < 1e-3  # Lipschitz: |dY/dlon| * 2 eps is tiny


@pytest.mark.parametrize("pole", [90.0, -90.0])
def test_finite_and_smooth_at_the_poles(pole):
    lons = torch.linspace(-180.0, 180.0, 7, dtype=torch.float64)
    at_pole = torch.stack([lons, torch.full_like(lons, pole)], 1)
    y = spherical_harmonics(at_pole, 40)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y[:1].expand_as(y), rtol=0, atol=1e-12)  # no dependence on lon
    m_nonzero = torch.tensor([m != 0 for deg in range(40) for m in range(-deg, deg + 1)])
    assert y[:, m_nonzero].abs().max() < 1e-12
    near = spherical_harmonics(at_pole - torch.tensor([0.0, math.copysign(1e-7, pole)]), 40)
    assert (near - y).abs().max() < 1e-3
    coords = at_pole.clone().requires_grad_(True)
    spherical_harmonics(coords, 10).sum().backward()
    assert torch.isfinite(coords.grad).all()
    y32 = spherical_harmonics(at_pole.float(), 40)
    assert torch.isfinite(y32).all()


def test_float32_agrees_with_float64_at_L40():
    pts = random_points(2000, seed=4)
    y64 = spherical_harmonics(pts, 40)
    y32 = spherical_harmonics(pts.float(), 40)
    assert y32.dtype == torch.float32 and torch.isfinite(y32).all()
    rel = (y32.double() - y64).abs().max() / y64.abs().max()
    assert rel < 1e-4


def test_autograd_path_matches_and_has_correct_gradients():
    pts = random_points(50, seed=5, max_lat=85.0)
    plain = spherical_harmonics(pts, 15)
    graded = spherical_harmonics(pts.clone().requires_grad_(True), 15)
    torch.testing.assert_close(graded.detach(), plain, rtol=0, atol=1e-13)
    inp = pts[:6].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: spherical_harmonics(c, 6, "orthonormal"), (inp,))


def test_out_buffer_is_reused_and_checked():
    pts = random_points(30, seed=6)
    buf = torch.empty(25, 30, dtype=torch.float64)
    y = spherical_harmonics(pts, 5, out=buf)
    assert y.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(y, spherical_harmonics(pts, 5))
    with pytest.raises(ValueError, match="out must be"):
        spherical_harmonics(pts, 5, out=torch.empty(30, 25, dtype=torch.float64))


def test_large_outputs_are_ordinary_tensors():
    big = empty_features(((40 << 20) // 8,), torch.float64)  # above the huge-page threshold
    big.fill_(2.0)
    assert big.sum().item() == 2.0 * big.numel()
    view = big.view(1024, -1).t()
    assert view.contiguous().shape == (big.numel() // 1024, 1024) and view.clone().share_memory_().is_shared()
    assert empty_features((2, 3), torch.float32).shape == (2, 3)


def test_module_and_bad_arguments():
    sh = SphericalHarmonics(7, "orthonormal")
    assert sh.embedding_dim == 49 and sh(random_points(3)).shape == (3, 49)
    assert not dict(sh.state_dict())  # nothing to save
    assert sh(torch.zeros(0, 2)).shape == (0, 49)
    assert spherical_harmonics(torch.zeros(2, 2, dtype=torch.int64), 3).dtype == torch.float64
    with pytest.raises(ValueError, match="convention"):
        SphericalHarmonics(5, "condon-shortley")
    with pytest.raises(ValueError, match="legendre_polys"):
        SphericalHarmonics(0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        spherical_harmonics(torch.zeros(3, 3), 4)
    with pytest.raises(ValueError, match="unknown positional encoding"):
        build_positional_encoding("nope")


# ---------------------------------------------------------------------------------------------
# Coordinate encodings
# ---------------------------------------------------------------------------------------------

ONE_SCALE = dict(frequency_num=1, min_radius=RAD, max_radius=RAD)  # coord / r = radians


@pytest.mark.parametrize(("name", "per_scale"), [("grid", 4), ("theory", 6), ("spherec", 3), ("spherecplus", 6),
                                                 ("spherem", 5), ("spheremplus", 8)])
def test_multiscale_dimensions(name, per_scale):
    enc = build_positional_encoding(name, frequency_num=16)
    assert enc.embedding_dim == 16 * per_scale
    out = enc(random_points(9))
    assert out.shape == (9, 16 * per_scale) and torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "point", "expected"), [
    ("direct", (90.0, 45.0), [math.pi / 2, math.pi / 4]),
    ("cartesian3d", (90.0, 0.0), [0.0, 1.0, 0.0]),
    ("cartesian3d", (0.0, 90.0), [0.0, 0.0, 1.0]),
    ("wrap", (90.0, 0.0), [0.0, 1.0, 1.0, 0.0]),
    ("grid", (90.0, 0.0), [1.0, 0.0, 0.0, 1.0]),
    ("theory", (90.0, 0.0), [1.0, 0.0, -math.sqrt(0.5), math.sqrt(0.5), -math.sqrt(0.5), math.sqrt(0.5)]),
    ("spherec", (90.0, 0.0), [0.0, 0.0, 1.0]),
    ("spherecplus", (90.0, 0.0), [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]),
    ("spherem", (90.0, 0.0), [0.0, 0.0, 0.0, 1.0, 1.0]),
    ("spheremplus", (90.0, 0.0), [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]),
    ("spherem", (0.0, 30.0), [0.5, math.sqrt(0.75), math.sqrt(0.75), 0.0, 0.0]),
])
def test_encoding_values_by_hand(name, point, expected):
    enc = build_positional_encoding(name, **ONE_SCALE)
    out = enc(torch.tensor([point], dtype=torch.float64))
    assert enc.embedding_dim == len(expected)
    assert out[0].tolist() == pytest.approx(expected, abs=1e-12)


def test_multiscale_uses_degree_radii_and_groups_by_scale():
    enc = build_positional_encoding("grid", frequency_num=3, min_radius=1.0, max_radius=100.0)
    torch.testing.assert_close(enc.inv_scales, torch.tensor([1.0, 0.1, 0.01], dtype=torch.float64) * RAD)
    out = enc(torch.tensor([[3.0, 2.0]], dtype=torch.float64))[0]
    for s, r in enumerate([1.0, 10.0, 100.0]):  # angles are coord / r in the coordinates' unit
        assert out[4 * s : 4 * s + 4].tolist() == pytest.approx(
            [math.sin(3 / r), math.cos(3 / r), math.sin(2 / r), math.cos(2 / r)], abs=1e-12)
    assert enc(torch.zeros(2, 2, dtype=torch.float32)).dtype == torch.float32


def test_geometric_scales():
    inv = geometric_scales(5, 2.0, 32.0)
    torch.testing.assert_close(inv, 1 / torch.tensor([2.0, 4.0, 8.0, 16.0, 32.0], dtype=torch.float64))
    assert geometric_scales(1, 3.0, 9.0).tolist() == [pytest.approx(1 / 3)]
    with pytest.raises(ValueError):
        geometric_scales(4, 5.0, 1.0)


def test_registry_covers_the_original_names():
    assert set(POSITIONAL_ENCODINGS) == {"sh", "direct", "cartesian3d", "wrap", "theory", "grid", "spherec",
                                         "spherecplus", "spherem", "spheremplus"}
