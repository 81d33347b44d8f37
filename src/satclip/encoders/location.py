"""The location encoder: a positional encoding followed by a network, built from a config.

``LocationEncoderConfig`` is the ``location`` sub-section of the pretraining parameters; its
fields are stable names (checkpoints store ``dataclasses.asdict`` of it). ``LocationEncoder``
keeps the submodule names of the original (``posenc``, ``nnet``), so a released checkpoint's
``model.location.nnet.*`` weights load as ``nnet.*``.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from satclip.encoders import cpu
from satclip.encoders.cpu import empty_features, release_workspace
from satclip.encoders.nets import NETWORKS, build_network
from satclip.encoders.positional import (
    POSITIONAL_ENCODINGS,
    SH_CONVENTIONS,
    PositionalEncoding,
    SphericalHarmonics,
    build_positional_encoding,
)

__all__ = ["DTYPES", "LocationEncoderConfig", "LocationEncoder", "release_workspace"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}

@dataclass
class LocationEncoderConfig:
    """Architecture of a location encoder (defaults: the released SatCLIP models, L = 10).

    Attributes:
        encoding: positional encoding, one of ``POSITIONAL_ENCODINGS`` (``sh`` = spherical harmonics).
        legendre_polys: L, number of spherical-harmonic degrees (L^2 features); released: 10, 40.
        sh_convention: ``satclip`` (released checkpoints) or ``orthonormal`` (textbook real SH).
        frequency_num: S, number of scales of the multi-scale encodings (16: the Space2Vec
            default and SatCLIP's configs/default.yaml).
        min_radius: smallest scale r_0 in degrees (1: default of the original's
            get_positional_encoding); the angles are coord / r_s.
        max_radius: largest scale r_{S-1} in degrees (360: same source).
        network: ``siren``, ``mlp``, ``fcnet`` or ``linear``.
        hidden_dim: hidden width (released: 512).
        num_hidden_layers: hidden layers (SIREN, MLP) or residual blocks (FCNet); released: 2.
        dropout: dropout probability on hidden layers during training (released: 0.5).
        embed_dim: output dimension (released: 256).
        w0_initial: SIREN frequency of the first layer (30).
        w0: SIREN frequency of the later layers (1).
        dtype: parameter and compute dtype, ``float32`` or ``float64`` (the original: float64).
    """

    encoding: str = "sh"
    legendre_polys: int = 10
    sh_convention: str = "satclip"
    frequency_num: int = 16
    min_radius: float = 1.0
    max_radius: float = 360.0
    network: str = "siren"
    hidden_dim: int = 512
    num_hidden_layers: int = 2
    dropout: float = 0.5
    embed_dim: int = 256
    w0_initial: float = 30.0
    w0: float = 1.0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
                continue
            expected = {"str": str, "int": int, "float": float}.get(f.type, f.type) if isinstance(f.type, str) else f.type
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"location.{f.name}: expected {getattr(expected, '__name__', expected)}, got {value!r}")
        self._check_choice("encoding", sorted(POSITIONAL_ENCODINGS))
        self._check_choice("sh_convention", list(SH_CONVENTIONS))
        self._check_choice("network", sorted(NETWORKS))
        self._check_choice("dtype", list(DTYPES))
        for name in ("legendre_polys", "frequency_num", "hidden_dim", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"location.{name} must be >= 1, got {getattr(self, name)}")
        min_layers = 1 if self.network == "siren" else 0
        if self.num_hidden_layers < min_layers:
            raise ValueError(f"location.num_hidden_layers must be >= {min_layers} for network "
                             f"{self.network!r}, got {self.num_hidden_layers}")
        if not 0.0 < self.min_radius <= self.max_radius:
            raise ValueError(f"location: need 0 < min_radius <= max_radius, got {self.min_radius}, {self.max_radius}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"location.dropout must be in [0, 1), got {self.dropout}")
        if self.w0_initial <= 0 or self.w0 <= 0:
            raise ValueError(f"location: w0_initial and w0 must be > 0, got {self.w0_initial}, {self.w0}")

    def _check_choice(self, name: str, choices: list[str]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"location.{name} must be one of {choices}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LocationEncoderConfig":
        """Build from a plain dict (e.g. a checkpoint's ``hyper_parameters['location']``).

        Raises:
            ValueError: an unknown key or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown location-encoder keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    @property
    def torch_dtype(self) -> torch.dtype:
        """``dtype`` as a ``torch.dtype``."""
        return DTYPES[self.dtype]


class LocationEncoder(nn.Module):
    """``nnet(posenc(coords))``: (N, 2) (lon, lat) degrees -> (N, embedding_dim) embeddings.

    Coordinates are cast to the parameters' dtype (not moved across devices). Without autograd,
    spherical harmonics go into a per-thread buffer kept between calls (``release_workspace``
    frees it), and batches beyond 512 MB of features are processed in chunks.
    """

    def __init__(self, posenc: PositionalEncoding, nnet: nn.Module,
                 config: LocationEncoderConfig | None = None, embedding_dim: int | None = None) -> None:
        """Compose ``posenc`` and ``nnet``; ``embedding_dim`` defaults to the last layer's width."""
        super().__init__()
        self.posenc = posenc
        self.nnet = nnet
        self.config = config
        self.embedding_dim = embedding_dim if embedding_dim is not None else _output_dim(nnet)

    @classmethod
    def from_config(cls, config: LocationEncoderConfig) -> "LocationEncoder":
        """Build a freshly initialized encoder (in ``config.dtype``) from ``config``."""
        posenc = build_positional_encoding(
            config.encoding, legendre_polys=config.legendre_polys, sh_convention=config.sh_convention,
            frequency_num=config.frequency_num, min_radius=config.min_radius, max_radius=config.max_radius)
        nnet = build_network(
            config.network, posenc.embedding_dim, dim_hidden=config.hidden_dim, dim_out=config.embed_dim,
            num_layers=config.num_hidden_layers, dropout=config.dropout, w0=config.w0, w0_initial=config.w0_initial)
        return cls(posenc, nnet, config).to(config.torch_dtype)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the parameters (and of the computation)."""
        return next(self.parameters()).dtype

    def forward(self, coords: Tensor) -> Tensor:
        """(N, 2) (lon, lat) degrees -> (N, embedding_dim)."""
        coords = coords.to(self.dtype)
        needs_grad = torch.is_grad_enabled() and (
            coords.requires_grad or any(p.requires_grad for p in self.parameters()))
        if not isinstance(self.posenc, SphericalHarmonics) or needs_grad or coords.shape[0] == 0:
            return self.nnet(self.posenc(coords))
        n, rows = coords.shape[0], self.posenc.embedding_dim
        step = min(n, max(1024, cpu.WORKSPACE_BYTES // (rows * coords.element_size())))
        shared = cpu.workspace_buffer(rows * step, coords.dtype, coords.device)  # (L^2 * step,)
        buffer = shared if shared is not None else empty_features((rows * step,), coords.dtype, coords.device)
        if shared is not None:
            cpu.set_workspace_busy(True)
        try:
            if step == n:
                return self.nnet(self.posenc(coords, out=buffer.view(rows, n)))
            out = torch.empty(n, self.embedding_dim, dtype=coords.dtype, device=coords.device)
            for start in range(0, n, step):
                chunk = coords[start : start + step]  # (c, 2)
                feats = self.posenc(chunk, out=buffer[: rows * chunk.shape[0]].view(rows, chunk.shape[0]))
                out[start : start + chunk.shape[0]] = self.nnet(feats)
            return out
        finally:
            if shared is not None:
                cpu.set_workspace_busy(False)


def _output_dim(nnet: nn.Module) -> int:
    """Output width of a network: rows of the weight of its last registered layer."""
    weights = [m.weight for m in nnet.modules() if isinstance(getattr(m, "weight", None), Tensor)]
    if not weights:
        raise ValueError("cannot infer the output width of the network; pass embedding_dim")
    return int(weights[-1].shape[0])
