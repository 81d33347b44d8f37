"""Real spherical harmonics of (lon, lat) points, all (l, m) at once.

The associated Legendre functions are evaluated by their normalized three-term recurrence, run
directly on the output rows (a Python loop over the degree l only, each step vectorized over
points and orders); accurate in float32 and float64 for L well past 40. Two conventions:

- ``satclip``: what the released SatCLIP checkpoints were trained on (microsoft/satclip at
  commit 1ead106, ``satclip/positional_encoding/spherical_harmonics*.py``): theta from the south
  pole, phi = lon + 180 deg, no Condon-Shortley phase, the m = 0 columns times pi (an
  operator-precedence slip of the original), column l^2 + l + m; equal to (-1)^l times
  ``orthonormal`` with the m = 0 columns times pi. See docs/encoders.md.
- ``orthonormal``: textbook real spherical harmonics (colatitude from the north pole, phi = lon),
  orthonormal on the unit sphere.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from satclip.encoders.coordinates import PositionalEncoding, lonlat_radians
from satclip.encoders.cpu import empty_features, parallel_over_points

__all__ = ["SH_CONVENTIONS", "SphericalHarmonics", "spherical_harmonics"]

SH_CONVENTIONS = ("satclip", "orthonormal")

# Constant of the l = 0 harmonic, 1 / sqrt(4 pi): the orthonormal normalization of Y_00.
_Y00 = 1.0 / math.sqrt(4.0 * math.pi)


@functools.lru_cache(maxsize=64)
def _sh_tables(legendre_polys: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...]:
    """Recurrence coefficients for degrees l < L, computed in float64 and cast once.

    Returns:
        a, b: (L^2, 1) packed per output row l^2 + l + m (only the interior rows |m| <= l - 2
            are used): P_l^m = a_lm x P_{l-1}^m - b_lm P_{l-2}^m with
            a_lm = sqrt((4 l^2 - 1) / (l^2 - m^2)),
            b_lm = sqrt((2l + 1) ((l - 1)^2 - m^2) / ((2l - 3) (l^2 - m^2))).
        ratio: (L - 1, 1), ratio[l - 1] = sqrt((2l + 1) / (2l)), times sqrt(2) / sqrt(4 pi) for
            l = 1, so that the running product of ratio * sin(theta) is sqrt(2) P_l^l.
        sub: (L - 1, 1), sub[l - 1] = sqrt(2l + 1): P_l^{l-1} = sqrt(2l + 1) x P_{l-1}^{l-1}.
        orders: (L - 1, 1), the orders m = 1..L-1 (for the phases m * phi).
        diag_rows, sub_rows: (2 (L - 1),), (2 (L - 2),) output rows of |m| = l and |m| = l - 1.
    These are the standard fully normalized (4 pi -> 1) recurrences without the Condon-Shortley
    phase (e.g. Holmes and Featherstone 2002, J. Geodesy 76, 279-299).
    """
    L = legendre_polys
    f64 = torch.float64
    a = torch.zeros(L * L, 1, dtype=f64)
    b = torch.zeros(L * L, 1, dtype=f64)
    for deg in range(2, L):
        m = torch.arange(-(deg - 2), deg - 1, dtype=f64).abs()  # interior orders of degree deg
        rows = slice(deg * deg + 2, deg * deg + 2 * deg - 1)
        a[rows, 0] = torch.sqrt((4.0 * deg**2 - 1.0) / (deg**2 - m**2))
        b[rows, 0] = torch.sqrt((2.0 * deg + 1.0) * ((deg - 1.0) ** 2 - m**2) / ((2.0 * deg - 3.0) * (deg**2 - m**2)))
    deg = torch.arange(1, max(L, 2), dtype=f64)
    ratio = torch.sqrt((2.0 * deg + 1.0) / (2.0 * deg))
    ratio[0] *= math.sqrt(2.0) * _Y00
    sub = torch.sqrt(2.0 * deg + 1.0)
    tables = tuple(t.to(dtype=dtype, device=device) for t in (a, b, ratio[:, None], sub[:, None], deg[:, None]))
    # output rows of |m| = l (l >= 1) and |m| = l - 1 (l >= 2), each pair ordered (-m, +m)
    diag_rows = [r for d in range(1, L) for r in (d * d, d * d + 2 * d)]
    sub_rows = [r for d in range(2, L) for r in (d * d + 1, d * d + 2 * d - 1)]
    return (*tables, *(torch.tensor(r, dtype=torch.long, device=device) for r in (diag_rows, sub_rows)))


def _sh_angles(coords: Tensor, convention: str) -> tuple[Tensor, Tensor, Tensor, float]:
    """X = cos(theta), s = sin(theta) >= 0, phi (all (N,)) and the m = 0 factor of a convention."""
    lon, lat = lonlat_radians(coords)
    s = torch.cos(lat).clamp_(min=0.0)  # sin(theta) for both conventions; >= 0 at the poles
    if convention == "satclip":
        # theta = lat + 90 deg measured from the south pole, so cos(theta) = -sin(lat);
        # phi = lon + 180 deg; the m = 0 columns carry a factor pi (docs/encoders.md).
        return -torch.sin(lat), s, lon + math.pi, math.pi
    if convention == "orthonormal":
        return torch.sin(lat), s, lon, 1.0
    raise ValueError(f"unknown spherical-harmonics convention {convention!r}; expected one of {SH_CONVENTIONS}")


def _sh_fill(out: Tensor, x: Tensor, s: Tensor, phi: Tensor, L: int, c0: float) -> None:
    """Write the L^2 harmonics of n points into ``out`` of shape (L^2, n), in place.

    Row l^2 + l + m holds degree l, order m. Column recurrences along l are linear, so they run
    on the harmonics themselves (P_l^m times cos(m phi) or sin(|m| phi)): each degree is a few
    whole-block operations on the rows of the two previous degrees.
    """
    a, b, ratio, sub, orders, diag_rows, sub_rows = _sh_tables(L, out.dtype, out.device)
    n = x.shape[0]
    out[0].fill_(c0 * _Y00)
    if L == 1:
        return
    torch.mul(out[0], sub[0] * x, out=out[2])  # l = 1, m = 0: sqrt(3) cos(theta) Y_00
    # |m| = l for all l at once: (L-1, 2, n) [sin(l phi), cos(l phi)] * sqrt(2) P_l^l, the rows
    # l^2 (m = -l) and l^2 + 2l (m = +l); sqrt(2) P_l^l = prod_{k <= l} ratio_k sin(theta).
    ang = orders * phi  # (L-1, n)
    diag = torch.empty((L - 1, 2, n), dtype=out.dtype, device=out.device)
    torch.sin(ang, out=diag[:, 0])
    torch.cos(ang, out=diag[:, 1])
    diag.mul_(torch.cumprod(s[:, None] * ratio.T, dim=1).T[:, None, :])  # (n, L-1) cumprod: fast axis
    out.index_copy_(0, diag_rows, diag.view(2 * (L - 1), n))
    if L == 2:
        return
    # |m| = l - 1 for l >= 2: sqrt(2l + 1) cos(theta) times the |m| = l - 1 rows of degree l - 1
    subdiag = diag[:-1] * (sub[1:] * x)[:, None, :]  # (L-2, 2, n)
    out.index_copy_(0, sub_rows, subdiag.view(2 * (L - 2), n))
    del diag, subdiag
    for deg in range(2, L):
        # |m| <= deg - 2: three-term recurrence on rows of degrees deg - 1 and deg - 2
        d2, p2 = deg * deg, (deg - 1) ** 2
        rows = slice(d2 + 2, d2 + 2 * deg - 1)
        cur = out[rows]
        torch.mul(out[p2 + 1 : p2 + 2 * deg - 2], x, out=cur)
        cur.mul_(a[rows])
        cur.addcmul_(b[rows], out[(deg - 2) ** 2 : p2], value=-1.0)


def _sh_autograd(x: Tensor, s: Tensor, phi: Tensor, L: int, c0: float) -> Tensor:
    """Out-of-place version of ``_sh_fill`` for inputs that need gradients; returns (L^2, n)."""
    a, b, ratio, sub, orders, _, _ = _sh_tables(L, x.dtype, x.device)
    blocks = [torch.full_like(x, c0 * _Y00)[None]]  # degree 0: (1, n)
    if L > 1:
        ang = orders * phi
        sin, cos = torch.sin(ang), torch.cos(ang)
        diag = torch.cumprod(ratio * s, dim=0)  # (L-1, n)
        xs = sub * x
    for deg in range(1, L):
        lo, hi = sin[deg - 1] * diag[deg - 1], cos[deg - 1] * diag[deg - 1]
        prev = blocks[deg - 1]
        if deg == 1:
            blocks.append(torch.stack([lo, xs[0] * prev[0], hi]))
            continue
        sub_lo, sub_hi = xs[deg - 1] * prev[0], xs[deg - 1] * prev[-1]
        rows = slice(deg * deg + 2, deg * deg + 2 * deg - 1)
        inner = a[rows] * x * prev[1:-1] - b[rows] * blocks[deg - 2]
        blocks.append(torch.cat([lo[None], sub_lo[None], inner, sub_hi[None], hi[None]]))
    return torch.cat(blocks)


def spherical_harmonics(coords: Tensor, legendre_polys: int, convention: str = "satclip",
                        out: Tensor | None = None) -> Tensor:
    """Real spherical harmonics of degrees l < L at (lon, lat) points.

    Args:
        coords: (N, 2) longitude, latitude in degrees (floating point; the result has its dtype).
        legendre_polys: L, the number of degrees; the result has L^2 columns, index l^2 + l + m.
        convention: ``"satclip"`` (released checkpoints) or ``"orthonormal"`` (textbook).
        out: optional (L^2, N) contiguous buffer to write into (feature-major), reused across calls.

    Returns:
        (N, L^2) harmonics. Without autograd this is the transpose of a feature-major (L^2, N)
        buffer (column-major); call ``.contiguous()`` if row-major memory is needed. Matrix
        products (``F.linear``) take it as is.
    """
    if legendre_polys < 1:
        raise ValueError(f"legendre_polys must be >= 1, got {legendre_polys}")
    if not coords.is_floating_point():
        coords = coords.double()
    x, s, phi, c0 = _sh_angles(coords, convention)
    n, rows = coords.shape[0], legendre_polys * legendre_polys
    if torch.is_grad_enabled() and coords.requires_grad:
        return _sh_autograd(x, s, phi, legendre_polys, c0).t()
    if out is None:
        out = empty_features((rows, n), coords.dtype, coords.device)
    elif out.shape != (rows, n) or out.dtype != coords.dtype or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous {coords.dtype} tensor of shape {(rows, n)}, "
                         f"got {out.dtype} {tuple(out.shape)}")
    parallel_over_points(_sh_fill, out, x, s, phi, legendre_polys, c0)
    return out.t()


class SphericalHarmonics(PositionalEncoding):
    """Real spherical harmonics up to degree L - 1 (L^2 features), see ``spherical_harmonics``."""

    def __init__(self, legendre_polys: int = 10, convention: str = "satclip") -> None:
        super().__init__()
        if legendre_polys < 1:
            raise ValueError(f"legendre_polys must be >= 1, got {legendre_polys}")
        if convention not in SH_CONVENTIONS:
            raise ValueError(f"unknown spherical-harmonics convention {convention!r}; expected one of {SH_CONVENTIONS}")
        self.legendre_polys = legendre_polys
        self.convention = convention
        self.embedding_dim = legendre_polys * legendre_polys

    def forward(self, coords: Tensor, out: Tensor | None = None) -> Tensor:
        """(N, 2) degrees -> (N, L^2); ``out`` is an optional (L^2, N) buffer."""
        return spherical_harmonics(coords, self.legendre_polys, self.convention, out=out)

    def extra_repr(self) -> str:
        """The ``repr`` line of the module: legendre_polys, convention."""
        return f"legendre_polys={self.legendre_polys}, convention={self.convention!r}"
