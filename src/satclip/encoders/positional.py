"""Positional encodings by name: ``build_positional_encoding("sh", legendre_polys=10)``.

The names are those of the original SatCLIP code (microsoft/satclip at commit 1ead106):
``sh``, ``direct``, ``cartesian3d``, ``wrap``, ``theory``, ``grid``, ``spherec``, ``spherecplus``,
``spherem``, ``spheremplus``. The encodings themselves live in ``coordinates`` and
``spherical_harmonics``.
"""

from __future__ import annotations

from collections.abc import Callable

from satclip.encoders.coordinates import (
    Cartesian3D,
    Direct,
    Grid,
    PositionalEncoding,
    SphereC,
    SphereCPlus,
    SphereM,
    SphereMPlus,
    Theory,
    Wrap,
    _MultiScale,
)
from satclip.encoders.spherical_harmonics import SH_CONVENTIONS, SphericalHarmonics

__all__ = ["SH_CONVENTIONS", "POSITIONAL_ENCODINGS", "PositionalEncoding", "SphericalHarmonics",
           "build_positional_encoding"]


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
