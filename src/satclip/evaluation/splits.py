"""Train / validation / test splits of a task's points.

- ``random``: the paper's protocol, 50/50 train/test, validation carved from train.
- ``checkerboard``: square lon/lat blocks alternate train/test like a chessboard (grid offset
  drawn from the seed), so test points are not next to training points; validation is a random
  set of whole training blocks, spatially apart as well.
- ``continent``: train on all other continents, test on the held-out one (the paper's
  geographic-generalization experiment: Asia, then Africa); validation is whole blocks of the
  training continents, so model selection rewards extrapolation, as the test does.

Every split is deterministic in its seed. Indices are row positions (``int64``) into the task
table, each sorted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from satclip.evaluation.config import EvaluateConfig

# Independent random streams per split kind (numpy SeedSequence entropy: [seed, stream]).
_STREAM = {"random": 11, "checkerboard": 12, "continent": 13, "cap": 14}


@dataclass(frozen=True)
class Split:
    """Row indices of one split; ``holdout`` is the held-out continent of a continent split."""

    name: str
    train: np.ndarray  # (n_train,) int64
    val: np.ndarray    # (n_val,) int64
    test: np.ndarray   # (n_test,) int64
    seed: int
    holdout: str | None = None
    block_deg: float | None = None  # checkerboard: the block edge used (degrees)

    @property
    def n_fit(self) -> int:
        """Points a probe may learn from (train + validation)."""
        return len(self.train) + len(self.val)


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAM[stream]])


def _sorted(idx: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(idx, dtype=np.int64))


def _carve_val(train: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random ``val_fraction`` of ``train`` as validation (at least one training point stays)."""
    n_val = int(round(val_fraction * len(train)))
    n_val = min(n_val, max(len(train) - 1, 0))
    perm = rng.permutation(train)
    return _sorted(perm[n_val:]), _sorted(perm[:n_val])


def random_split(n: int, test_fraction: float = 0.5, val_fraction: float = 0.1, seed: int = 0) -> Split:
    """Uniform random split of ``n`` points: ``test_fraction`` test, validation from the rest."""
    rng = _rng(seed, "random")
    perm = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    train, val = _carve_val(perm[n_test:], val_fraction, rng)
    return Split("random", train, val, _sorted(perm[:n_test]), seed)


def _grid(deg: float, seed: int) -> tuple[np.ndarray, int, np.random.Generator]:
    """Seeded (lon, lat) offset of the grid, which colour is test, and the stream for validation."""
    rng = _rng(seed, "checkerboard")
    offset = rng.uniform(0.0, deg, size=2)  # (2,) degrees
    return offset, int(rng.integers(2)), rng


def checkerboard_blocks(lon: np.ndarray, lat: np.ndarray, deg: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Block column and row of every point on the seed's ``deg``-degree grid.

    Columns wrap at the antimeridian (with 360 / deg an even integer the pattern is seamless).
    """
    offset, _, _ = _grid(deg, seed)
    col = np.floor(np.mod(np.asarray(lon, dtype=np.float64) + 180.0 - offset[0], 360.0) / deg)
    row = np.floor((np.asarray(lat, dtype=np.float64) + 90.0 + offset[1]) / deg)
    return col.astype(np.int64), row.astype(np.int64)


def checkerboard_split(lon: np.ndarray, lat: np.ndarray, deg: float = 10.0, val_fraction: float = 0.1,
                       seed: int = 0) -> Split:
    """Alternate ``deg``-degree blocks between train and test; validation = whole training blocks.

    Which colour is test is drawn from the seed too. About ``val_fraction`` of the training
    blocks (at least one when there are two or more) become validation blocks.
    """
    col, row = checkerboard_blocks(lon, lat, deg, seed)
    _, colour, rng = _grid(deg, seed)
    is_test = (col + row) % 2 == colour
    test = np.flatnonzero(is_test)
    train, val = _carve_val_blocks(np.flatnonzero(~is_test), col, row, val_fraction, rng)
    return Split("checkerboard", train, val, _sorted(test), seed, block_deg=float(deg))


def _carve_val_blocks(train_pts: np.ndarray, col: np.ndarray, row: np.ndarray, val_fraction: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Whole blocks as validation: (train, val) point indices.

    About ``val_fraction`` of the blocks holding ``train_pts`` (at least one of two or more).
    """
    block = col[train_pts] * 1_000_003 + row[train_pts]  # unique id of each training block
    blocks = np.unique(block)
    n_val_blocks = 0
    if val_fraction > 0 and len(blocks) >= 2:
        n_val_blocks = min(max(int(round(val_fraction * len(blocks))), 1), len(blocks) - 1)
    val_blocks = rng.choice(blocks, size=n_val_blocks, replace=False)
    in_val = np.isin(block, val_blocks)
    return _sorted(train_pts[~in_val]), _sorted(train_pts[in_val])


def block_size(lon: np.ndarray, lat: np.ndarray, deg: float, min_blocks: int) -> float:
    """``deg``, shrunk so that at least ``min_blocks`` blocks span the points' larger extent.

    Global tasks keep ``deg``; a regional one (California housing spans ~10 degrees) gets
    blocks small enough to alternate within it. ``min_blocks = 0`` always returns ``deg``.
    """
    if min_blocks <= 0 or len(lon) == 0:
        return deg
    span = max(float(np.ptp(lon)), float(np.ptp(lat)))
    return min(deg, span / min_blocks) if span > 0 else deg


def continent_split(continent: np.ndarray | pd.Series, holdout: str, val_fraction: float = 0.1,
                    seed: int = 0, lon: np.ndarray | None = None, lat: np.ndarray | None = None,
                    block_deg: float = 10.0) -> Split:
    """Test on every point of ``holdout``; train (and validate) on every other point.

    With ``lon`` and ``lat``, validation is whole ``block_deg`` blocks of the training continents
    (as on the checkerboard), so hyper-parameters are chosen for extrapolation to unseen regions,
    the test's demand, not for interpolation; without, a random ``val_fraction`` of them.
    Points whose continent is missing count as "other" (they train). The test set may be empty
    when the task has no point on ``holdout`` (e.g. California housing): callers report that.
    """
    is_test = pd.Series(continent).astype(object).eq(holdout).fillna(False).to_numpy(dtype=bool)  # (n,)
    rng = _rng(seed, "continent")
    if lon is None or lat is None:
        train, val = _carve_val(np.flatnonzero(~is_test), val_fraction, rng)
    else:
        col, row = checkerboard_blocks(lon, lat, block_deg, seed)
        train, val = _carve_val_blocks(np.flatnonzero(~is_test), col, row, val_fraction, rng)
    return Split(f"continent:{holdout}", train, val, _sorted(np.flatnonzero(is_test)), seed, holdout)


def cap_train(split: Split, max_points: int | None, seed: int) -> Split:
    """Random subsample of at most ``max_points`` training points (validation and test unchanged)."""
    if max_points is None or len(split.train) <= max_points:
        return split
    keep = _rng(seed, "cap").choice(split.train, size=max_points, replace=False)
    return dataclasses.replace(split, train=_sorted(keep))


def make_splits(table: pd.DataFrame, cfg: EvaluateConfig, seed: int) -> Iterator[Split]:
    """Every split configured in ``cfg.splits`` for ``table`` (columns ``lon, lat, continent``).

    Yields in ``cfg.split_names()`` order; ``max_train_points`` is applied to each.
    """
    for kind in cfg.splits:
        if kind == "random":
            splits = [random_split(len(table), cfg.test_fraction, cfg.val_fraction, seed)]
        elif kind == "checkerboard":
            lon, lat = table["lon"].to_numpy(), table["lat"].to_numpy()
            deg = block_size(lon, lat, cfg.checkerboard_deg, cfg.checkerboard_min_blocks)
            splits = [checkerboard_split(lon, lat, deg, cfg.val_fraction, seed)]
        elif kind == "continent":
            if "continent" not in table.columns:
                raise KeyError("continent split needs a 'continent' column in the label table")
            lon, lat = table["lon"].to_numpy(), table["lat"].to_numpy()
            splits = [continent_split(table["continent"], c, cfg.val_fraction, seed, lon, lat, cfg.checkerboard_deg)
                      for c in cfg.continent_holdouts]
        else:  # EvaluateConfig validates the names
            raise ValueError(f"unknown split {kind!r}")
        for split in splits:
            yield cap_train(split, cfg.max_train_points, seed)
