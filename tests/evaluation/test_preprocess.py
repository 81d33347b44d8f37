"""Probe input preprocessing: standardization and whitening fit on the training split."""

from __future__ import annotations

import numpy as np

from satclip.evaluation.preprocess import InputTransform


def test_whitening_gives_each_kept_component_unit_variance_and_drops_empty_ones():
    rng = np.random.default_rng(0)
    # a collapsed embedding: 3 strong directions, 2 weak ones, 3 constant features
    basis = rng.normal(size=(5, 8))
    x = (rng.normal(size=(500, 5)) * np.array([10.0, 5.0, 2.0, 0.01, 0.001])) @ basis
    x[:, 5:] = 0.0
    x = x.astype(np.float32)
    t = InputTransform("whiten", x, k=32)
    z = t(x)
    assert z.shape == (500, 5)  # min(k, d) = 8 components, 3 without variance dropped
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(np.corrcoef(z.T), np.eye(5), atol=1e-3)
    s = InputTransform("standardize", x)(x)
    assert s.shape == x.shape and s[:, 3].std() > 0.5 and np.all(s[:, 5:] == 0)
