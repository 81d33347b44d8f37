"""The simple positional encodings of (lon, lat) points and their base class.

Every encoding is an ``nn.Module`` that maps ``(N, 2)`` (lon, lat) in degrees to ``(N, D)``
features and exposes ``D`` as ``embedding_dim``: ``Direct``, ``Cartesian3D``, ``Wrap`` and the
multi-scale encodings of Space2Vec (``Theory``, ``Grid``; Mai et al., ICLR 2020) and Sphere2Vec
(``SphereC(Plus)``, ``SphereM(Plus)``; Mai et al., ISPRS J. 2023), named as in the original
SatCLIP code (microsoft/satclip at commit 1ead106, ``satclip/positional_encoding/``).

The multi-scale encodings use the geometric scales r_s = min_radius * (max_radius /
min_radius)^(s / (S - 1)), s = 0..S-1, and the angles coord / r_s. Radii are in degrees, like the
coordinates, so coord / r_s is the same number as radians(coord) / radians(r_s). Unlike the
original code, the single-scale terms of sphereM(+) and ``direct`` are computed in radians and
no feature is duplicated.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["PositionalEncoding", "lonlat_radians", "Direct", "Cartesian3D", "Wrap", "geometric_scales",
           "Theory", "Grid", "SphereC", "SphereCPlus", "SphereM", "SphereMPlus"]


class PositionalEncoding(nn.Module):
    """Base class: ``forward`` maps ``(N, 2)`` (lon, lat) degrees to ``(N, embedding_dim)``."""

    embedding_dim: int

    def extra_repr(self) -> str:
        """The ``repr`` line of the module: ``embedding_dim=D``."""
        return f"embedding_dim={self.embedding_dim}"


def lonlat_radians(coords: Tensor) -> tuple[Tensor, Tensor]:
    """(N, 2) (lon, lat) in degrees -> lon (N,), lat (N,) in radians (integers become float64)."""
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"expected coordinates of shape (N, 2) as (lon, lat), got {tuple(coords.shape)}")
    if not coords.is_floating_point():
        coords = coords.double()
    rad = torch.deg2rad(coords)
    return rad[:, 0], rad[:, 1]


# ---------------------------------------------------------------------------------------------
# Single-scale coordinate encodings
# ---------------------------------------------------------------------------------------------


class Direct(PositionalEncoding):
    """(lon, lat) in radians: lon in [-pi, pi], lat in [-pi/2, pi/2] (2 features).

    The original shifts both by -pi, which its comment says should give [-pi, pi]; it does not.
    """

    embedding_dim = 2

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 2) [lon, lat] radians."""
        lon, lat = lonlat_radians(coords)
        return torch.stack([lon, lat], dim=1)


class Cartesian3D(PositionalEncoding):
    """Unit vector (cos lat cos lon, cos lat sin lon, sin lat) (3 features)."""

    embedding_dim = 3

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 3) [cos lat cos lon, cos lat sin lon, sin lat]."""
        lon, lat = lonlat_radians(coords)
        return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=1)


class Wrap(PositionalEncoding):
    """[cos lon, sin lon, cos lat, sin lat] (4 features; Mac Aodha et al. 2019)."""

    embedding_dim = 4

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 4) [cos lon, sin lon, cos lat, sin lat]."""
        lon, lat = lonlat_radians(coords)
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
        lon, lat = lonlat_radians(coords)
        inv = self.inv_scales.to(device=lon.device, dtype=lon.dtype)
        return lon[:, None], lat[:, None], lon[:, None] * inv, lat[:, None] * inv

    def _flatten(self, feats: list[Tensor]) -> Tensor:
        """List of k (N, S) tensors -> (N, S * k), grouped by scale: [scale 0: k features, ...]."""
        return torch.stack(feats, dim=2).flatten(1)

    def extra_repr(self) -> str:
        """The ``repr`` line of the module: frequency_num, min_radius, max_radius, embedding_dim."""
        return (f"frequency_num={self.frequency_num}, min_radius={self.min_radius}, "
                f"max_radius={self.max_radius}, embedding_dim={self.embedding_dim}")


class Grid(_MultiScale):
    """Space2Vec grid: per scale [sin lon_s, cos lon_s, sin lat_s, cos lat_s] (4 S features)."""

    features_per_scale = 4

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 4 S) [sin lon_s, cos lon_s, sin lat_s, cos lat_s] per scale."""
        _, _, lon_s, lat_s = self._scaled(coords)
        return self._flatten([torch.sin(lon_s), torch.cos(lon_s), torch.sin(lat_s), torch.cos(lat_s)])


class Theory(_MultiScale):
    """Space2Vec theory: projections on three unit vectors 120 deg apart, sin and cos per scale (6 S).

    The plane is (lon, lat) in radians; per scale [sin a1, cos a1, sin a2, cos a2, sin a3, cos a3].
    """

    features_per_scale = 6

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 6 S) [sin a_k, cos a_k for k = 1, 2, 3] per scale."""
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
        """(N, 2) (lon, lat) degrees -> (N, 3 S) [sin lat_s, cos lat_s cos lon_s, cos lat_s sin lon_s] per scale."""
        _, _, lon_s, lat_s = self._scaled(coords)
        cos_lat = torch.cos(lat_s)
        return self._flatten([torch.sin(lat_s), cos_lat * torch.cos(lon_s), cos_lat * torch.sin(lon_s)])


class SphereCPlus(_MultiScale):
    """Sphere2Vec sphereC+: sphereC and grid without the repeated sin lat_s (6 S).

    Per scale [sin lat_s, cos lat_s, sin lon_s, cos lon_s, cos lat_s cos lon_s, cos lat_s sin lon_s].
    """

    features_per_scale = 6

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 6 S) sphereC+ features, 6 per scale (see the class)."""
        _, _, lon_s, lat_s = self._scaled(coords)
        sin_lat, cos_lat, sin_lon, cos_lon = torch.sin(lat_s), torch.cos(lat_s), torch.sin(lon_s), torch.cos(lon_s)
        return self._flatten([sin_lat, cos_lat, sin_lon, cos_lon, cos_lat * cos_lon, cos_lat * sin_lon])


class SphereM(_MultiScale):
    """Sphere2Vec sphereM: multi-scale terms mixed with single-scale (radian) ones (5 S).

    Per scale [sin lat_s, cos lat_s cos lon, cos lat cos lon_s, cos lat_s sin lon, cos lat sin lon_s].
    """

    features_per_scale = 5

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, 5 S) sphereM features, 5 per scale (see the class)."""
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
        """(N, 2) (lon, lat) degrees -> (N, 8 S) sphereM+ features, 8 per scale (see the class)."""
        lon, lat, lon_s, lat_s = self._scaled(coords)
        sin_lat_s, cos_lat_s, sin_lon_s, cos_lon_s = torch.sin(lat_s), torch.cos(lat_s), torch.sin(lon_s), torch.cos(lon_s)
        cos_lat = torch.cos(lat)
        return self._flatten([sin_lat_s, cos_lat_s, sin_lon_s, cos_lon_s, cos_lat_s * torch.cos(lon),
                              cos_lat * cos_lon_s, cos_lat_s * torch.sin(lon), cos_lat * sin_lon_s])
