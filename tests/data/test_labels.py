"""Every label builder on the mirror files: row counts, value ranges, coverage, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satclip.data import labels
from satclip.data.sampling import CoordinateError, sample_land

N = 3000


@pytest.fixture(scope="module")
def built(geodata, tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    countries = labels.countries_frame(raw, str(geodata))
    points = labels.add_continent(sample_land(N, seed=0, min_lat=-60, max_lat=90), countries)
    tables = {t: labels.build_task(t, points, raw_dir=raw, mirror=str(geodata), countries=countries)
              for t in labels.TASKS}
    tables["_raw"] = raw
    return tables


def test_every_table_has_the_common_columns(built):
    for task in labels.TASKS:
        df = built[task]
        assert list(df.columns[:4]) == ["lon", "lat", "target", "continent"], task
        assert df["lon"].between(-180, 180).all() and df["lat"].between(-90, 90).all(), task
        assert df["target"].notna().all(), task
        assert df["continent"].notna().all(), task


def test_air_temperature(built):
    df = built["air_temperature"]
    assert len(df) == 3076
    assert df["target"].between(-40, 40).all()
    assert "meanP" in df and (df["meanP"] >= 0).all()


def test_elevation_range(built):
    df = built["elevation"]
    assert len(df) == N
    assert df["target"].between(-11000, 9000).all()
    assert df["target"].median() > 100  # land points: mostly above sea level
    # spot checks: the Tibetan plateau is high, the Dead Sea shore is below sea level, and the
    # antimeridian (lon 180 = -180) is continuous
    etopo = built["_raw"] / "elevation" / "etopo20.cdf"
    z = labels.sample_etopo(np.array([88.0, 35.5, 180.0, -180.0]), np.array([32.0, 31.5, 65.0, 65.0]), etopo)
    assert z[0] > 4000 and z[1] < 0
    assert z[2] == pytest.approx(z[3])


def test_population_density(built):
    df = built["population"]
    assert len(df) > 0.95 * N  # only GPW nodata cells are dropped
    assert (df["density"] >= 0).all() and (df["target"] >= 0).all()
    assert df["target"].max() > 6  # some dense cells (> 400 persons/km^2)
    np.testing.assert_allclose(df["target"], np.log1p(df["density"]))


def test_countries_and_biomes_cover_most_land(built):
    assert len(built["countries"]) > 0.95 * N
    assert built["countries"]["target"].nunique() > 100
    assert len(built["biomes"]) > 0.93 * N
    assert built["biomes"]["target"].nunique() == 14
    assert "N/A" not in set(built["biomes"]["target"])
    assert built["ecoregions"]["target"].nunique() > 300


def test_california_housing(built):
    df = built["california_housing"]
    assert len(df) == 20640
    assert df["target"].between(14_000, 600_000).all()
    assert (df["continent"] == "North America").all()


def test_ecoregions_min_class_count(geodata, tmp_path):
    countries = labels.countries_frame(tmp_path, str(geodata))
    points = sample_land(500, seed=1, min_lat=-60, max_lat=90)
    df = labels.build_task("ecoregions", points, raw_dir=tmp_path, mirror=str(geodata),
                           countries=countries, min_class_count=5)
    assert df["target"].value_counts().min() >= 5


def test_bad_station_file(geodata, tmp_path, monkeypatch):
    bad = tmp_path / "stations.csv"
    pd.DataFrame({"Lon": [0.0, 500.0], "Lat": [0.0, 0.0], "meanT": [1.0, 2.0],
                  "meanP": [1.0, 1.0]}).to_csv(bad, index=False)
    monkeypatch.setattr(labels, "fetch", lambda *a, **k: bad)
    with pytest.raises(CoordinateError, match=r"stations\.csv.*row 1: lon=500\.0"):
        labels.build_air_temperature(None, None, None, None)
    pd.DataFrame({"lon": [0.0], "lat": [0.0]}).to_csv(bad, index=False)
    with pytest.raises(labels.LabelError, match=r"missing columns \['Lat', 'Lon', 'meanP', 'meanT'\]"):
        labels.build_air_temperature(None, None, None, None)


def test_write_table_is_atomic(tmp_path):
    path = labels.write_table(pd.DataFrame({"lon": [1.0], "lat": [2.0]}), tmp_path / "t.parquet")
    assert pd.read_parquet(path)["lat"].tolist() == [2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
