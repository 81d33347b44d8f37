"""The encoder behind each ``extract.encoders`` name (see ``extraction.names``)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from satclip.config import Params
from satclip.embed import ResolvedEncoder, resolve_encoder
from satclip.encoders.location import LocationEncoder
from satclip.paths import Layout
from satclip.streams import TrainStream


def untrained_encoder(params: Params) -> LocationEncoder:
    """The pretrain stage's location encoder, freshly initialized from ``TrainStream.UNTRAINED_INIT``."""
    torch.manual_seed(int(np.random.SeedSequence([params.seed, TrainStream.UNTRAINED_INIT]).generate_state(1)[0]))
    return LocationEncoder.from_config(params.pretrain.location).eval()


def resolve_named_encoder(name: str, params: Params) -> ResolvedEncoder:
    """The ``ResolvedEncoder`` for an ``extract.encoders`` entry."""
    if name == "satclip":
        resolved = resolve_encoder(str(Layout.of(params).checkpoint), progress=False)
        resolved.metadata["encoder"] = "satclip"
        return resolved
    if name == "satclip-random":
        module = untrained_encoder(params)
        meta = {"encoder": name, "kind": "untrained", "location_config": asdict(params.pretrain.location),
                "embedding_dim": int(module.embedding_dim)}
        return ResolvedEncoder(module, int(module.embedding_dim), meta)
    if name == "sh":
        resolved = resolve_encoder(f"sh:{params.pretrain.location.legendre_polys}", progress=False)
        resolved.metadata["encoder"] = "sh"
        return resolved
    return resolve_encoder(name, progress=True)
