"""Ridge regression from one eigendecomposition: every alpha's fit, and the leave-one-out choice.

``ridge_loo`` is the estimator of scikit-learn's ``RidgeCV`` / ``RidgeClassifierCV`` (the linear
probe of RANGE's re-evaluation, Dhakal et al., CVPR 2025); ``ridge_coefs`` gives the fit of each
alpha of a grid (the ``linear_val`` probe chooses among them on validation).
"""

from __future__ import annotations

import numpy as np


def _ridge_system(x: np.ndarray, y: np.ndarray):
    """The centred eigensystem of a ridge problem: what every alpha's fit and LOO error reuse.

    Returns (x_mean (d,), lam (d,), v (d, d), z = xc v (n, d), w = z^T yc (d, k), y_mean (k,),
    codes (n,) or None, yc (n, k) or None, yy = |yc_i|^2 (n,)); ``y`` as in :func:`ridge_loo`.
    """
    from scipy import sparse

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    x_mean = x.mean(axis=0)
    xc = x - x_mean                                      # (n, d)
    lam, v = np.linalg.eigh(xc.T @ xc)                   # (d,), (d, d)
    lam = np.clip(lam, 0.0, None)
    z = xc @ v                     # (n, d): hat matrix = 1/n + z diag(1/(lam + alpha)) z^T
    codes = yc = None
    if np.asarray(y).ndim == 1:    # one-hot targets, never materialized as (n, k)
        codes = np.asarray(y, dtype=np.int64)
        k = int(codes.max()) + 1
        y_mean = np.bincount(codes, minlength=k) / n     # (k,)
        # w = z^T (onehot - y_mean) = per-class sums of z (the columns of z sum to 0)
        onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(k, n))  # (k, n)
        w = np.asarray((onehot @ z).T)                   # (d, k)
        yy = 1.0 - 2.0 * y_mean[codes] + y_mean @ y_mean  # (n,) |yc_i|^2
    else:
        y = np.asarray(y, dtype=np.float64)
        y_mean = y.mean(axis=0)
        yc = y - y_mean                                  # (n, k)
        w = z.T @ yc                                     # (d, k)
        yy = np.einsum("ij,ij->i", yc, yc)
    return x_mean, lam, v, z, w, y_mean, codes, yc, yy


def _ridge_coef(x_mean, lam, v, w, y_mean, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    coef = v @ (w / (lam + alpha)[:, None])              # (d, k)
    return coef, y_mean - x_mean @ coef


def ridge_coefs(x: np.ndarray, y: np.ndarray, alphas: list[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ridge fits (coef (d, k), intercept (k,)) for every alpha, from one eigendecomposition.

    The estimator and target coding of :func:`ridge_loo`, without the leave-one-out error.
    """
    x_mean, lam, v, _, w, y_mean, *_ = _ridge_system(x, y)
    return [_ridge_coef(x_mean, lam, v, w, y_mean, alpha) for alpha in alphas]


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas: list[float]) -> tuple[float, np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalized intercept, alpha chosen by exact leave-one-out error.

    The estimator of scikit-learn's ``RidgeCV`` / ``RidgeClassifierCV`` with ``cv=None`` (efficient
    LOO; one alpha for all targets, the lowest mean squared LOO residual), computed from one
    eigendecomposition of the (d, d) Gram matrix so that d = 512 and ~700 classes stay fast.
    ``x``: (n, d); ``y``: (n, k) float targets, or (n,) integer codes standing for one-hot
    targets (classification). Returns (alpha, coef (d, k), intercept (k,)).
    """
    x_mean, lam, v, z, w, y_mean, codes, yc, yy = _ridge_system(x, y)
    n, d = z.shape
    k = w.shape[1]
    z2 = z * z
    direct = k <= d  # residuals per alpha cost n*d*k; else n*d*d through q = w w^T
    if not direct:
        # |e_i|^2 = |yc_i|^2 - 2 t_i . a_i + t_i q t_i^T with t = z / (lam + alpha), a = yc w^T
        # float32 here: the per-alpha (n, d) x (d, d) product dominates; errors ~1e-7 of |yc_i|^2
        a_mat = ((w.T[codes] - w @ y_mean) if codes is not None else yc @ w.T).astype(np.float32)  # (n, d)
        q = (w @ w.T).astype(np.float32)                 # (d, d)
        z32 = z.astype(np.float32)
    best = (np.inf, alphas[0])
    for alpha in alphas:
        h = 1.0 / n + z2 @ (1.0 / (lam + alpha))         # (n,) leverages
        if direct:
            fit = (z / (lam + alpha)) @ w                # (n, k) centered in-sample predictions
            if codes is not None:  # |yc_i - f_i|^2 with yc_i = onehot_i - y_mean
                cross = fit[np.arange(n), codes] - fit @ y_mean
                sq = yy - 2 * cross + np.einsum("ij,ij->i", fit, fit)
            else:
                resid = yc - fit
                sq = np.einsum("ij,ij->i", resid, resid)
        else:
            t32 = z32 * (1.0 / (lam + alpha)).astype(np.float32)
            quad = np.einsum("ij,ij->i", t32 @ q, t32)
            sq = yy - 2 * np.einsum("ij,ij->i", t32, a_mat) + quad
        loo = float(np.mean(np.clip(sq, 0.0, None) / np.maximum(1.0 - h, 1e-12) ** 2))
        if loo < best[0]:
            best = (loo, alpha)
    alpha = float(best[1])
    return (alpha, *_ridge_coef(x_mean, lam, v, w, y_mean, alpha))
