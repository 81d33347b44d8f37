"""Input preprocessing of the probes, fit on the training split: standardization, PCA, whitening."""

from __future__ import annotations

import numpy as np


def _standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale of ``x`` (scale 1 for constant features)."""
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def pca_basis(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and top-``k`` principal axes (d, min(k, d)) of ``x`` (n, d), signs fixed.

    Deterministic: the SVD of the centred data, each axis' largest-magnitude loading made positive.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)  # vt: (min(n, d), d)
    axes = vt[: min(k, vt.shape[0])].T                       # (d, k)
    sign = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return mean, axes * np.where(sign == 0, 1.0, sign)


class InputTransform:
    """An affine map of the embeddings fit on the training split: (n, d) -> (n, m), float32.

    ``standardize``: per-feature mean and scale (m = d). ``whiten``: the top ``k`` principal
    components, each divided by its standard deviation on the training split (m <= k; components
    with no variance are dropped). Whitening gives the low-variance directions of a collapsed
    embedding the same scale as the dominant ones, so a briefly trained MLP can use them.
    """

    def __init__(self, kind: str, x_train: np.ndarray, k: int = 32) -> None:
        self.kind = kind
        if kind == "standardize":
            self.mean, scale = _standardizer(x_train)
            self.matrix = None
            self.scale = scale
        elif kind == "whiten":
            mean, axes = pca_basis(x_train, k)                        # (d,), (d, k)
            proj = (np.asarray(x_train, dtype=np.float64) - mean) @ axes  # (n, k)
            std = proj.std(axis=0)
            keep = std > 1e-9 * max(float(std.max(initial=0.0)), 1e-300)
            self.mean = mean.astype(np.float32)
            self.matrix = (axes[:, keep] / std[keep]).astype(np.float32)  # (d, m)
        else:
            raise ValueError(f"unknown preprocessing {kind!r}; choose from standardize, whiten")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, m) float32, C-contiguous."""
        x = np.asarray(x, dtype=np.float32) - self.mean
        out = x / self.scale if self.matrix is None else x @ self.matrix
        return np.ascontiguousarray(out, dtype=np.float32)
