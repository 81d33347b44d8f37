"""Splits: sizes, disjointness, spatial separation, held-out continents, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satclip.evaluation.config import EvaluateConfig
from satclip.evaluation.splits import (
    cap_train,
    checkerboard_blocks,
    checkerboard_split,
    continent_split,
    make_splits,
    random_split,
)

CONTINENTS = ["Asia", "Africa", "Europe", "North America", "South America", "Oceania"]


def points(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cont = rng.choice(CONTINENTS + ["Seven seas (open ocean)"], size=n, p=[0.2] * 4 + [0.1, 0.09, 0.01])
    cont = cont.astype(object)
    cont[:5] = None  # a few points without a continent train
    return pd.DataFrame({"lon": rng.uniform(-180, 180, n), "lat": rng.uniform(-60, 80, n),
                         "target": rng.normal(size=n), "continent": cont})


def assert_partition(split, n: int) -> None:
    parts = [split.train, split.val, split.test]
    allidx = np.concatenate(parts)
    assert len(allidx) == len(np.unique(allidx)), "train, val and test overlap"
    assert set(allidx.tolist()) <= set(range(n))
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)


def test_random_split_is_the_papers_50_50_with_validation_from_train():
    s = random_split(1001, test_fraction=0.5, val_fraction=0.1, seed=3)
    assert_partition(s, 1001)
    assert len(s.test) == 500 and len(s.train) + len(s.val) == 501  # round(500.5) = 500 (banker's)
    assert len(s.val) == 50
    assert s.n_fit == 501 and s.name == "random"


def test_random_split_is_deterministic_in_the_seed():
    a, b, c = random_split(500, seed=1), random_split(500, seed=1), random_split(500, seed=2)
    for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.test, c.test)


def test_checkerboard_no_block_has_both_train_and_test_points():
    t = points()
    for seed in range(4):
        s = checkerboard_split(t.lon, t.lat, deg=10.0, val_fraction=0.1, seed=seed)
        assert_partition(s, len(t))
        assert s.n_fit + len(s.test) == len(t)  # every point used
        col, row = checkerboard_blocks(t.lon, t.lat, 10.0, seed)
        block = col * 1000 + row
        fit_blocks = set(block[np.concatenate([s.train, s.val])])
        test_blocks = set(block[s.test])
        assert not fit_blocks & test_blocks
        # validation is made of whole training-colour blocks, apart from the training blocks
        val_blocks, train_blocks = set(block[s.val]), set(block[s.train])
        assert val_blocks and not val_blocks & train_blocks
        parity = (col + row) % 2
        assert len(set(parity[s.train]) | set(parity[s.val])) == 1
        assert set(parity[s.test]) != set(parity[s.train])
        assert 0.35 < len(s.test) / len(t) < 0.65


def test_checkerboard_neighbouring_test_and_train_points_are_in_different_blocks():
    # two points 1 degree apart across a block edge never share a block when colours differ
    t = points(4000, seed=5)
    s = checkerboard_split(t.lon, t.lat, deg=5.0, seed=0)
    col, row = checkerboard_blocks(t.lon, t.lat, 5.0, 0)
    tr = set(zip(col[s.train], row[s.train], strict=True))
    te = set(zip(col[s.test], row[s.test], strict=True))
    for c, r in te:  # edge-adjacent blocks of a test block are never test blocks
        assert (c + 1, r) not in te and (c, r + 1) not in te
    assert tr and te


def test_checkerboard_is_deterministic_and_the_grid_moves_with_the_seed():
    t = points()
    a = checkerboard_split(t.lon, t.lat, 10.0, 0.1, seed=7)
    b = checkerboard_split(t.lon, t.lat, 10.0, 0.1, seed=7)
    c = checkerboard_split(t.lon, t.lat, 10.0, 0.1, seed=8)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.val, b.val)
    assert not np.array_equal(a.test, c.test)


def test_checkerboard_wraps_at_the_antimeridian():
    lon = np.array([-179.999, 179.999])
    lat = np.array([10.0, 10.0])
    for seed in range(5):
        col, _ = checkerboard_blocks(lon, lat, 10.0, seed)
        assert col.min() >= 0 and col.max() <= 35  # 36 columns, indices wrap instead of going negative


def test_continent_split_holds_out_exactly_that_continent():
    t = points()
    for holdout in ("Asia", "Africa"):
        s = continent_split(t["continent"], holdout, val_fraction=0.1, seed=0)
        assert_partition(s, len(t))
        assert s.name == f"continent:{holdout}" and s.holdout == holdout
        np.testing.assert_array_equal(s.test, np.flatnonzero(t["continent"].to_numpy() == holdout))
        fit = np.concatenate([s.train, s.val])
        assert holdout not in set(t["continent"].iloc[fit].dropna())
        assert len(fit) + len(s.test) == len(t)  # every other point trains, missing continents too
        assert set(range(5)) <= set(fit.tolist())


def test_continent_split_validates_on_whole_blocks_of_the_training_continents():
    t = points()
    lon, lat = t["lon"].to_numpy(), t["lat"].to_numpy()
    s = continent_split(t["continent"], "Asia", val_fraction=0.2, seed=3, lon=lon, lat=lat, block_deg=10.0)
    assert_partition(s, len(t))
    assert "Asia" not in set(t["continent"].iloc[np.concatenate([s.train, s.val])].dropna())
    col, row = checkerboard_blocks(lon, lat, 10.0, 3)
    block = col * 1_000_003 + row
    assert not set(block[s.val]) & set(block[s.train])  # no block is split between train and val
    assert len(s.val) > 0
    pointwise = continent_split(t["continent"], "Asia", val_fraction=0.2, seed=3)
    assert set(block[pointwise.val]) & set(block[pointwise.train])  # without coordinates: random points


def test_continent_split_without_points_on_the_holdout_has_an_empty_test_set():
    t = points(200).assign(continent="North America")  # like California housing
    s = continent_split(t["continent"], "Asia", seed=0)
    assert len(s.test) == 0 and s.n_fit == 200


def test_make_splits_yields_every_configured_split_in_order():
    t = points()
    cfg = EvaluateConfig(splits=["random", "checkerboard", "continent"], continent_holdouts=["Asia", "Africa"],
                         max_train_points=500)
    splits = list(make_splits(t, cfg, seed=0))
    assert [s.name for s in splits] == cfg.split_names() == [
        "random", "checkerboard", "continent:Asia", "continent:Africa"]
    assert all(len(s.train) == 500 for s in splits)  # capped
    again = list(make_splits(t, cfg, seed=0))
    for x, y in zip(splits, again, strict=True):
        np.testing.assert_array_equal(x.train, y.train)


def test_cap_train_keeps_validation_and_test():
    s = random_split(1000, seed=0)
    c = cap_train(s, 100, seed=0)
    assert len(c.train) == 100 and set(c.train) <= set(s.train)
    np.testing.assert_array_equal(c.val, s.val)
    np.testing.assert_array_equal(c.test, s.test)
    assert cap_train(s, None, 0) is s


def test_make_splits_needs_a_continent_column():
    cfg = EvaluateConfig(splits=["continent"])
    with pytest.raises(KeyError, match="continent"):
        list(make_splits(points(50).drop(columns="continent"), cfg, 0))
