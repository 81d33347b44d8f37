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

#: encoders with one embedding per pretraining run (``pretrain.runs``)
PER_RUN = ("satclip", "satclip-random")


def runs_of(name: str, params: Params) -> int:
    """How many embeddings encoder ``name`` has: ``pretrain.runs`` for ``PER_RUN``, else 1."""
    return params.pretrain.runs if name in PER_RUN else 1


def untrained_encoder(params: Params, run: int = 0) -> LocationEncoder:
    """The pretrain stage's location encoder, freshly initialized from ``TrainStream.UNTRAINED_INIT``.

    Initialization ``run`` >= 1 draws from ``(seed, UNTRAINED_INIT, run)``; run 0 from
    ``(seed, UNTRAINED_INIT)``.
    """
    entropy = [params.seed, TrainStream.UNTRAINED_INIT] + ([run] if run else [])
    torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
    return LocationEncoder.from_config(params.pretrain.location).eval()


def resolve_named_encoder(name: str, params: Params, run: int = 0) -> ResolvedEncoder:
    """The ``ResolvedEncoder`` for an ``extract.encoders`` entry (``run``: see ``PER_RUN``)."""
    if name == "satclip":
        resolved = resolve_encoder(str(Layout.of(params).run_checkpoint(run)), progress=False)
        resolved.metadata["encoder"] = "satclip"
        return resolved
    if name == "satclip-random":
        module = untrained_encoder(params, run)
        meta = {"encoder": name, "kind": "untrained", "location_config": asdict(params.pretrain.location),
                "embedding_dim": int(module.embedding_dim)}
        return ResolvedEncoder(module, int(module.embedding_dim), meta)
    if name == "sh":
        resolved = resolve_encoder(f"sh:{params.pretrain.location.legendre_polys}", progress=False)
        resolved.metadata["encoder"] = "sh"
        return resolved
    return resolve_encoder(name, progress=True)
