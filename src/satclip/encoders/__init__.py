"""Location encoders: positional encodings, networks, their composition and pretrained models.

Coordinates are (lon, lat) in degrees everywhere, as ``(N, 2)`` tensors.
"""

from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.encoders.nets import MLP, NETWORKS, FCNet, Siren, build_network
from satclip.encoders.positional import (
    POSITIONAL_ENCODINGS,
    SH_CONVENTIONS,
    Cartesian3D,
    Direct,
    Grid,
    PositionalEncoding,
    SphereC,
    SphereCPlus,
    SphereM,
    SphereMPlus,
    SphericalHarmonics,
    Theory,
    Wrap,
    build_positional_encoding,
    spherical_harmonics,
)

__all__ = [
    "LocationEncoder",
    "LocationEncoderConfig",
    "MLP",
    "NETWORKS",
    "FCNet",
    "Siren",
    "build_network",
    "POSITIONAL_ENCODINGS",
    "SH_CONVENTIONS",
    "Cartesian3D",
    "Direct",
    "Grid",
    "PositionalEncoding",
    "SphereC",
    "SphereCPlus",
    "SphereM",
    "SphereMPlus",
    "SphericalHarmonics",
    "Theory",
    "Wrap",
    "build_positional_encoding",
    "spherical_harmonics",
]
