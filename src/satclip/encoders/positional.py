"""Positional encodings of (lon, lat) points: spherical harmonics and the coordinate encodings.

Every encoding is an ``nn.Module`` that maps ``(N, 2)`` (lon, lat) in degrees to ``(N, D)``
features and exposes ``D`` as ``embedding_dim``. ``build_positional_encoding`` builds one by name
(the names of the original SatCLIP code: ``sh``, ``direct``, ``cartesian3d``, ``wrap``,
``theory``, ``grid``, ``spherec``, ``spherecplus``, ``spherem``, ``spheremplus``).

Spherical harmonics are evaluated for all (l, m) at once by the normalized three-term
recurrence of the associated Legendre functions, run directly on the output rows (a Python loop
over the degree l only, each step vectorized over points and orders). Two conventions:

- ``satclip``: what the released SatCLIP checkpoints were trained on (theta from the south pole,
  phi = lon + 180 deg, no Condon-Shortley phase, m = 0 columns times pi, column l^2 + l + m);
  equal to (-1)^l times ``orthonormal`` with the m = 0 columns times pi.
- ``orthonormal``: textbook real spherical harmonics (colatitude from the north pole, phi = lon),
  orthonormal on the unit sphere.

The multi-scale encodings (Space2Vec ``theory``/``grid``, Sphere2Vec ``sphere*``) use the
geometric scales r_s = min_radius * (max_radius / min_radius)^(s / (S - 1)), s = 0..S-1, and the
angles coord / r_s. Radii are in degrees, like the coordinates, so coord / r_s is the same number
as radians(coord) / radians(r_s). Unlike the original SatCLIP code, the single-scale terms of
sphereM(+) and ``direct`` are computed in radians and no feature is duplicated.
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor, nn

__all__ = [
    "SH_CONVENTIONS",
    "POSITIONAL_ENCODINGS",
    "PositionalEncoding",
    "SphericalHarmonics",
    "Direct",
    "Cartesian3D",
    "Wrap",
    "Theory",
    "Grid",
    "SphereC",
    "SphereCPlus",
    "SphereM",
    "SphereMPlus",
    "spherical_harmonics",
    "geometric_scales",
    "build_positional_encoding",
]

SH_CONVENTIONS = ("satclip", "orthonormal")

# Constant of the l = 0 harmonic, 1 / sqrt(4 pi): the orthonormal normalization of Y_00.
_Y00 = 1.0 / math.sqrt(4.0 * math.pi)
_HUGE_PAGE_MIN_BYTES = 32 << 20  # outputs from this size on get transparent huge pages


class PositionalEncoding(nn.Module):
    """Base class: ``forward`` maps ``(N, 2)`` (lon, lat) degrees to ``(N, embedding_dim)``."""

    embedding_dim: int

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}"


def empty_features(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """``torch.empty`` that backs large CPU tensors with transparent huge pages where possible.

    Writing a fresh multi-hundred-MB feature buffer is dominated by page faults (L = 40,
    65,536 points, float32: 420 MB, ~100k faults); with 2 MiB pages (Linux, THP mode "madvise"
    or "always") the first touch is several times cheaper. Falls back to ``torch.empty``.
    """
    device = torch.device(device)
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if device.type == "cpu" and nbytes >= _HUGE_PAGE_MIN_BYTES and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            buffer.madvise(mmap.MADV_HUGEPAGE)
            return torch.frombuffer(buffer, dtype=dtype).view(shape)  # the tensor keeps the mapping alive
        except (OSError, ValueError, AttributeError):
            pass
    return torch.empty(shape, dtype=dtype, device=device)


def _split(coords: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 2) degrees -> lon (N,), lat (N,) in radians."""
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"expected coordinates of shape (N, 2) as (lon, lat), got {tuple(coords.shape)}")
    if not coords.is_floating_point():
        coords = coords.double()
    rad = torch.deg2rad(coords)
    return rad[:, 0], rad[:, 1]


# ---------------------------------------------------------------------------------------------
# Spherical harmonics
# ---------------------------------------------------------------------------------------------


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
    """x = cos(theta), s = sin(theta) >= 0, phi (all (N,)) and the m = 0 factor of a convention."""
    lon, lat = _split(coords)
    s = torch.cos(lat).clamp_(min=0.0)  # sin(theta) for both conventions; >= 0 at the poles
    if convention == "satclip":
        # theta = lat + 90 deg measured from the south pole, so cos(theta) = -sin(lat);
        # phi = lon + 180 deg; the m = 0 columns carry a factor pi (SATCLIP_FACTS.md).
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


# CPU evaluation splits the points across a small thread pool whose workers each run torch
# single-threaded (``torch.set_num_threads`` is per thread with the OpenMP backend). A degree
# step is a few short tensor operations; run as OpenMP regions, each waits for all its threads,
# and on a CPU shared with other jobs that wait is a scheduler time slice per operation (3x
# slower measured with one busy neighbour). Independent workers never wait for each other.
_MIN_POINTS_PER_WORKER = 4096
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _single_threaded_worker() -> None:
    if "OpenMP" in torch.__config__.parallel_info():  # else set_num_threads would be process-wide
        torch.set_num_threads(1)


def _sh_pool(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="satclip-sh", initializer=_single_threaded_worker)
            _pool_size = threads
        return _pool


def _forget_pool() -> None:  # a forked child has the pool object but not its threads
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _sh_fill_slice(out: Tensor, x: Tensor, s: Tensor, phi: Tensor, L: int, c0: float) -> None:
    with torch.inference_mode():
        _sh_fill(out, x, s, phi, L, c0)


def _sh_fill_parallel(out: Tensor, x: Tensor, s: Tensor, phi: Tensor, L: int, c0: float) -> None:
    """``_sh_fill`` on CPU, the points split across ``torch.get_num_threads()`` pool workers."""
    n, threads = x.shape[0], torch.get_num_threads()
    if out.device.type != "cpu" or threads < 2 or n == 0:
        _sh_fill(out, x, s, phi, L, c0)
        return
    workers = max(1, min(threads, n // _MIN_POINTS_PER_WORKER))  # small inputs: one worker
    step = -(-n // workers)
    pool = _sh_pool(threads)
    parts = [pool.submit(_sh_fill_slice, out[:, i : i + step], x[i : i + step], s[i : i + step],
                         phi[i : i + step], L, c0) for i in range(0, n, step)]
    for part in parts:
        part.result()


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
    _sh_fill_parallel(out, x, s, phi, legendre_polys, c0)
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
        return f"legendre_polys={self.legendre_polys}, convention={self.convention!r}"


# ---------------------------------------------------------------------------------------------
# Single-scale coordinate encodings
# ---------------------------------------------------------------------------------------------


class Direct(PositionalEncoding):
    """(lon, lat) in radians: lon in [-pi, pi], lat in [-pi/2, pi/2] (2 features).

    The original shifts both by -pi, which its comment says should give [-pi, pi]; it does not.
    """

    embedding_dim = 2

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat = _split(coords)
        return torch.stack([lon, lat], dim=1)


class Cartesian3D(PositionalEncoding):
    """Unit vector (cos lat cos lon, cos lat sin lon, sin lat) (3 features)."""

    embedding_dim = 3

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat = _split(coords)
        return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=1)


class Wrap(PositionalEncoding):
    """[cos lon, sin lon, cos lat, sin lat] (4 features; Mac Aodha et al. 2019)."""

    embedding_dim = 4

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat = _split(coords)
        return torch.stack([torch.cos(lon), torch.sin(lon), torch.cos(lat), torch.sin(lat)], dim=1)


# ---------------------------------------------------------------------------------------------
# Multi-scale encodings (Space2Vec, Sphere2Vec)
# ---------------------------------------------------------------------------------------------


def geometric_scales(frequency_num: int, min_radius: float, max_radius: float) -> Tensor:
    """(S,) float64 inverse scales 1 / r_s, r_s = min_radius * (max_radius / min_radius)^(s / (S-1)).

    This is the "geometric" frequency list of Space2Vec (Mai et al., ICLR 2020); with S = 1 the
    single scale is ``min_radius``.
    """
    if frequency_num < 1:
        raise ValueError(f"frequency_num must be >= 1, got {frequency_num}")
    if not 0 < min_radius <= max_radius:
        raise ValueError(f"need 0 < min_radius <= max_radius, got {min_radius}, {max_radius}")
    s = torch.arange(frequency_num, dtype=torch.float64)
    exponent = s / (frequency_num - 1) if frequency_num > 1 else s
    return 1.0 / (min_radius * (max_radius / min_radius) ** exponent)


class _MultiScale(PositionalEncoding):
    """Shared parts: the (S,) inverse scales 1 / r_s (per radian, applied to radians)."""

    features_per_scale: int

    def __init__(self, frequency_num: int = 16, min_radius: float = 1.0, max_radius: float = 360.0) -> None:
        super().__init__()
        self.frequency_num = frequency_num
        self.min_radius = min_radius
        self.max_radius = max_radius
        self.embedding_dim = self.features_per_scale * frequency_num
        # radii are in degrees: radians(coord) / radians(r) = coord / r. Kept in float64 (not a
        # buffer, so ``.to(float32)`` cannot round it) and cast to the input's dtype when used.
        self.inv_scales = geometric_scales(frequency_num, math.radians(min_radius), math.radians(max_radius))

    def _scaled(self, coords: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """lon, lat (N, 1) radians and their multi-scale versions (N, S)."""
        lon, lat = _split(coords)
        inv = self.inv_scales.to(device=lon.device, dtype=lon.dtype)
        return lon[:, None], lat[:, None], lon[:, None] * inv, lat[:, None] * inv

    def _flatten(self, feats: list[Tensor]) -> Tensor:
        """list of k (N, S) tensors -> (N, S * k), grouped by scale: [scale 0: k features, ...]."""
        return torch.stack(feats, dim=2).flatten(1)

    def extra_repr(self) -> str:
        return (f"frequency_num={self.frequency_num}, min_radius={self.min_radius}, "
                f"max_radius={self.max_radius}, embedding_dim={self.embedding_dim}")


class Grid(_MultiScale):
    """Space2Vec grid: per scale [sin lon_s, cos lon_s, sin lat_s, cos lat_s] (4 S features)."""

    features_per_scale = 4

    def forward(self, coords: Tensor) -> Tensor:
        _, _, lon_s, lat_s = self._scaled(coords)
        return self._flatten([torch.sin(lon_s), torch.cos(lon_s), torch.sin(lat_s), torch.cos(lat_s)])


class Theory(_MultiScale):
    """Space2Vec theory: projections on three unit vectors 120 deg apart, sin and cos per scale (6 S).

    The plane is (lon, lat) in radians; per scale [sin a1, cos a1, sin a2, cos a2, sin a3, cos a3].
    """

    features_per_scale = 6

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat, _, _ = self._scaled(coords)
        inv = self.inv_scales.to(device=lon.device, dtype=lon.dtype)
        half_sqrt3 = math.sqrt(3.0) / 2.0  # the unit vectors (1, 0), (-1/2, +-sqrt(3)/2)
        proj = [lon, -0.5 * lon + half_sqrt3 * lat, -0.5 * lon - half_sqrt3 * lat]
        feats = []
        for p in proj:
            ang = p * inv
            feats += [torch.sin(ang), torch.cos(ang)]
        return self._flatten(feats)


class SphereC(_MultiScale):
    """Sphere2Vec sphereC: per scale [sin lat_s, cos lat_s cos lon_s, cos lat_s sin lon_s] (3 S)."""

    features_per_scale = 3

    def forward(self, coords: Tensor) -> Tensor:
        _, _, lon_s, lat_s = self._scaled(coords)
        cos_lat = torch.cos(lat_s)
        return self._flatten([torch.sin(lat_s), cos_lat * torch.cos(lon_s), cos_lat * torch.sin(lon_s)])


class SphereCPlus(_MultiScale):
    """Sphere2Vec sphereC+: sphereC and grid without the repeated sin lat_s (6 S).

    Per scale [sin lat_s, cos lat_s, sin lon_s, cos lon_s, cos lat_s cos lon_s, cos lat_s sin lon_s].
    """

    features_per_scale = 6

    def forward(self, coords: Tensor) -> Tensor:
        _, _, lon_s, lat_s = self._scaled(coords)
        sin_lat, cos_lat, sin_lon, cos_lon = torch.sin(lat_s), torch.cos(lat_s), torch.sin(lon_s), torch.cos(lon_s)
        return self._flatten([sin_lat, cos_lat, sin_lon, cos_lon, cos_lat * cos_lon, cos_lat * sin_lon])


class SphereM(_MultiScale):
    """Sphere2Vec sphereM: multi-scale terms mixed with single-scale (radian) ones (5 S).

    Per scale [sin lat_s, cos lat_s cos lon, cos lat cos lon_s, cos lat_s sin lon, cos lat sin lon_s].
    """

    features_per_scale = 5

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat, lon_s, lat_s = self._scaled(coords)
        cos_lat_s, cos_lat = torch.cos(lat_s), torch.cos(lat)
        return self._flatten([torch.sin(lat_s), cos_lat_s * torch.cos(lon), cos_lat * torch.cos(lon_s),
                              cos_lat_s * torch.sin(lon), cos_lat * torch.sin(lon_s)])


class SphereMPlus(_MultiScale):
    """Sphere2Vec sphereM+: sphereM and grid without the repeated sin lat_s (8 S).

    Per scale [sin lat_s, cos lat_s, sin lon_s, cos lon_s, cos lat_s cos lon, cos lat cos lon_s,
    cos lat_s sin lon, cos lat sin lon_s].
    """

    features_per_scale = 8

    def forward(self, coords: Tensor) -> Tensor:
        lon, lat, lon_s, lat_s = self._scaled(coords)
        sin_lat_s, cos_lat_s, sin_lon_s, cos_lon_s = torch.sin(lat_s), torch.cos(lat_s), torch.sin(lon_s), torch.cos(lon_s)
        cos_lat = torch.cos(lat)
        return self._flatten([sin_lat_s, cos_lat_s, sin_lon_s, cos_lon_s, cos_lat_s * torch.cos(lon),
                              cos_lat * cos_lon_s, cos_lat_s * torch.sin(lon), cos_lat * sin_lon_s])


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def _multi(cls: type[_MultiScale]) -> Callable[..., PositionalEncoding]:
    def build(*, frequency_num: int = 16, min_radius: float = 1.0, max_radius: float = 360.0, **_: object) -> PositionalEncoding:
        return cls(frequency_num=frequency_num, min_radius=min_radius, max_radius=max_radius)

    return build


def _sh(*, legendre_polys: int = 10, sh_convention: str = "satclip", **_: object) -> PositionalEncoding:
    return SphericalHarmonics(legendre_polys=legendre_polys, convention=sh_convention)


#: name -> builder taking keyword parameters (legendre_polys, sh_convention, frequency_num,
#: min_radius, max_radius; each builder ignores the ones it does not use).
POSITIONAL_ENCODINGS: dict[str, Callable[..., PositionalEncoding]] = {
    "sh": _sh,
    "direct": lambda **_: Direct(),
    "cartesian3d": lambda **_: Cartesian3D(),
    "wrap": lambda **_: Wrap(),
    "theory": _multi(Theory),
    "grid": _multi(Grid),
    "spherec": _multi(SphereC),
    "spherecplus": _multi(SphereCPlus),
    "spherem": _multi(SphereM),
    "spheremplus": _multi(SphereMPlus),
}


def build_positional_encoding(name: str, **params: object) -> PositionalEncoding:
    """Build the encoding ``name`` (a key of ``POSITIONAL_ENCODINGS``) with keyword ``params``."""
    try:
        builder = POSITIONAL_ENCODINGS[name]
    except KeyError:
        raise ValueError(f"unknown positional encoding {name!r}; expected one of {sorted(POSITIONAL_ENCODINGS)}") from None
    return builder(**params)
