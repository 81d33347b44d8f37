"""How many dimensions an embedding really uses: collapse diagnostics on the land grid.

For an embedding ``E`` (M points x d) with covariance eigenvalues ``lambda_1 >= ... >= lambda_d``:

- ``participation_ratio``: ``(sum lambda)^2 / sum lambda^2``, the effective number of dimensions
  (d for isotropic features, 1 for a single direction);
- ``k90``, ``k99``: the fewest principal components that hold 90 % / 99 % of the variance;
- ``sh_linear_share``: the share of ``E``'s variance that is a linear function (with intercept)
  of the spherical-harmonic features of the same points (least squares, R^2 pooled over the d
  columns). 1 means the encoder adds nothing a linear map of its SH inputs could not; the
  nonlinear part is what a linear probe on SH could not read.

A contrastive embedding that uses few directions ("dimensional collapse", Jing et al., ICLR
2022) can still rank locations well, while a probe that standardizes its inputs sees mostly the
noise of the unused directions. The extract stage reports these per encoder (mean over the
pretraining runs) in ``metrics/extract.json`` and in its report.
"""

from __future__ import annotations

import numpy as np

SHARES = {"k90": 0.90, "k99": 0.99}


def spectrum(emb: np.ndarray) -> np.ndarray:
    """Covariance eigenvalues of ``emb`` (M, d), descending, float64, clipped at 0."""
    x = np.asarray(emb, dtype=np.float64)
    x = x - x.mean(axis=0)
    cov = x.T @ x / max(len(x) - 1, 1)          # (d, d)
    return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)


def participation_ratio(eig: np.ndarray) -> float:
    """``(sum eig)^2 / sum eig^2`` (0 for a constant embedding)."""
    total, squares = float(eig.sum()), float((eig ** 2).sum())
    return total * total / squares if squares > 0 else 0.0


def components_for(eig: np.ndarray, share: float) -> int:
    """The fewest leading components whose eigenvalues sum to at least ``share`` of the total."""
    total = float(eig.sum())
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(eig) / total, share - 1e-12) + 1)


def linear_share(emb: np.ndarray, basis: np.ndarray) -> float:
    """R^2 of the least-squares fit ``emb ~ [1, basis]``, pooled over the columns of ``emb``."""
    y = np.asarray(emb, dtype=np.float64)
    y = y - y.mean(axis=0)                       # (M, d)
    x = np.asarray(basis, dtype=np.float64)
    x = np.column_stack([np.ones(len(x)), x - x.mean(axis=0)])   # (M, 1 + p)
    total = float((y ** 2).sum())
    if total <= 0:
        return float("nan")
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = float(((y - x @ coef) ** 2).sum())
    return 1.0 - residual / total


def collapse_diagnostics(emb: np.ndarray, sh_basis: np.ndarray | None = None) -> dict[str, float]:
    """``participation_ratio``, ``k90``, ``k99`` and (given the SH features) ``sh_linear_share``."""
    eig = spectrum(emb)
    out: dict[str, float] = {"participation_ratio": participation_ratio(eig)}
    out.update({name: components_for(eig, share) for name, share in SHARES.items()})
    if sh_basis is not None:
        out["sh_linear_share"] = linear_share(emb, sh_basis)
    return out


def mean_diagnostics(per_run: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each diagnostic over runs (rounded: 2 decimals, 4 for the share); ``runs``."""
    keys = per_run[0].keys()
    out: dict[str, float] = {}
    for key in keys:
        value = float(np.mean([d[key] for d in per_run]))
        out[key] = round(value, 4 if key == "sh_linear_share" else 2)
    out["runs"] = len(per_run)
    return out


def grid_diagnostics(params) -> dict[str, dict[str, float]]:
    """Encoder -> ``mean_diagnostics`` of its land-grid embeddings on disk (every run), every available encoder.

    The SH basis is the ``sh`` encoder at the pretraining degree L (``pretrain.location``), embedded
    on the same land grid.
    """
    from satclip.embed import embed_coordinates
    from satclip.extraction.named_encoders import resolve_named_encoder
    from satclip.extraction.store import grid_points, load_run_embeddings
    from satclip.paths import LAND_GRID

    points = grid_points(params)
    sh = resolve_named_encoder("sh", params, 0)
    basis = embed_coordinates(sh.module, points, batch_size=params.extract.batch_size)   # (M, L^2)
    out = {}
    for name in params.extract.encoders:
        runs, _ = load_run_embeddings(params, name, LAND_GRID)
        if runs is not None:
            out[name] = mean_diagnostics([collapse_diagnostics(emb, basis) for emb in runs])
    return out
