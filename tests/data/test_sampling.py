"""Land sampling is uniform in area; coordinate checks name the bad rows."""

from __future__ import annotations

import numpy as np
import pytest

from satclip.data.sampling import (
    CoordinateError,
    cell_area_km2,
    check_lonlat,
    great_circle_km,
    is_land,
    sample_land,
    sample_sphere,
)


def test_sphere_sampling_is_uniform_in_area():
    lon, lat = sample_sphere(200_000, np.random.default_rng(0))
    # the share of the sphere north of the equator up to 30 N is sin(30 deg) / 2 = 0.25
    share = np.mean((lat > 0) & (lat < 30))
    assert share == pytest.approx(0.25, abs=0.005)
    assert np.abs(lon).max() <= 180


def test_land_points_follow_land_area_per_latitude_band():
    pts = sample_land(20_000, seed=0, min_lat=-60, max_lat=90)
    assert len(pts) == 20_000 and is_land(pts["lon"], pts["lat"]).all()
    # land area per 15-degree band from the same 1 km mask on a 0.25-degree grid
    lat_c = np.arange(-60, 90, 0.25) + 0.125
    lon_c = np.arange(-180, 180, 0.25) + 0.125
    glon, glat = np.meshgrid(lon_c, lat_c)
    land = is_land(glon.ravel(), glat.ravel()).reshape(glat.shape)
    area = (land * np.cos(np.radians(glat))).sum(axis=1)  # (n_lat,)
    edges = np.arange(-60, 91, 15)
    expected = np.array([area[(lat_c >= a) & (lat_c < b)].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    expected /= expected.sum()
    observed = np.histogram(pts["lat"], bins=edges)[0] / len(pts)
    np.testing.assert_allclose(observed, expected, atol=0.012)


def test_sampling_is_deterministic_in_seed():
    a = sample_land(500, seed=3)
    b = sample_land(500, seed=3)
    c = sample_land(500, seed=4)
    assert a.equals(b) and not a.equals(c)


def test_check_lonlat_names_rows():
    with pytest.raises(CoordinateError, match=r"2 rows.*row 1: lon=200.0.*row 2: lon=nan"):
        check_lonlat(np.array([0.0, 200.0, np.nan]), np.array([0.0, 0.0, 0.0]), "pts.csv")
    check_lonlat(np.array([-180.0, 180.0]), np.array([-90.0, 90.0]))


def test_geometry_helpers():
    # a 1x1 degree cell at the equator is ~12,364 km^2
    assert cell_area_km2(np.array([0.0]), np.array([1.0]), 1.0)[0] == pytest.approx(12364, rel=1e-3)
    # the whole sphere
    assert cell_area_km2(np.array([-90.0]), np.array([90.0]), 360.0)[0] == pytest.approx(
        4 * np.pi * 6371.0088**2)
    assert great_circle_km(0, 0, 180, 0) == pytest.approx(np.pi * 6371.0088)
