"""Ridge fits from one eigendecomposition (the leave-one-out choice is tested in test_probes)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge

from satclip.evaluation.ridge import ridge_coefs, ridge_loo


def test_ridge_coefs_match_sklearn_for_every_alpha_and_ridge_loo_returns_one_of_them():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 7))
    y = x @ rng.normal(size=(7, 2)) + 0.3 * rng.normal(size=(120, 2))
    alphas = [1e-3, 1.0, 100.0]
    for alpha, (coef, intercept) in zip(alphas, ridge_coefs(x, y, alphas), strict=True):
        ref = Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(coef, ref.coef_.T, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-8, atol=1e-10)
    alpha, coef, intercept = ridge_loo(x, y, alphas)
    [(expected, _)] = ridge_coefs(x, y, [alpha])
    np.testing.assert_allclose(coef, expected)
    # classification codes stand for one-hot targets
    codes = rng.integers(0, 3, 120)
    [(coef_c, _)] = ridge_coefs(x, codes, [1.0])
    np.testing.assert_allclose(coef_c, Ridge(alpha=1.0).fit(x, np.eye(3)[codes]).coef_.T, rtol=1e-8, atol=1e-10)
