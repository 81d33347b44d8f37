"""Collapse diagnostics: effective dimensions and the share linear in the SH inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from satclip.extraction.diagnostics import (
    collapse_diagnostics,
    components_for,
    linear_share,
    mean_diagnostics,
    spectrum,
)


def test_isotropic_features_use_every_dimension_and_a_line_uses_one():
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(20_000, 8))
    d = collapse_diagnostics(iso)
    assert d["participation_ratio"] == pytest.approx(8, rel=0.02) and d["k99"] == 8 and d["k90"] >= 7
    line = np.outer(rng.normal(size=5_000), rng.normal(size=16)) + 1e-6 * rng.normal(size=(5_000, 16))
    d = collapse_diagnostics(line)
    assert d["participation_ratio"] == pytest.approx(1, abs=1e-3) and d["k90"] == d["k99"] == 1


def test_components_follow_the_cumulative_variance():
    eig = np.array([6.0, 3.0, 0.9, 0.1])   # cumulative 0.6, 0.9, 0.99, 1.0
    assert components_for(eig, 0.90) == 2 and components_for(eig, 0.99) == 3 and components_for(eig, 0.5) == 1
    assert components_for(np.zeros(3), 0.9) == 0
    eig = spectrum(np.random.default_rng(2).normal(size=(500, 6)) * [3.0, 2.0, 1.0, 1.0, 0.5, 0.1])
    assert np.all(np.diff(eig) <= 0) and np.all(eig >= 0) and eig[0] == pytest.approx(9.0, rel=0.2)


def test_linear_share_is_one_for_a_linear_map_and_less_for_a_nonlinear_one():
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(4_000, 10))
    assert linear_share(basis @ rng.normal(size=(10, 32)) + 3.0, basis) == pytest.approx(1.0)
    nonlinear = np.sin(4 * basis @ rng.normal(size=(10, 32)))
    assert linear_share(nonlinear, basis) < 0.2
    assert math.isnan(linear_share(np.ones((100, 4)), basis[:100]))


def test_mean_over_runs_rounds_and_counts():
    out = mean_diagnostics([{"participation_ratio": 4.333, "k90": 3, "k99": 10, "sh_linear_share": 0.99251},
                            {"participation_ratio": 4.0, "k90": 4, "k99": 11, "sh_linear_share": 0.99}])
    assert out == {"participation_ratio": 4.17, "k90": 3.5, "k99": 10.5, "sh_linear_share": 0.9913, "runs": 2}
