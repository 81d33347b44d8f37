"""The embeddings store.

An absolute checkpoint path works, nothing outside data/embeddings is deleted, non-finite
embeddings stop the stage with the old embeddings left in place.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from satclip.config import Params, from_dict
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig
from satclip.extraction import store
from satclip.extraction.store import NonFiniteEmbeddingError, encoder_dir, extract_encoder, load_embeddings
from satclip.paths import Layout


def _params(tmp_path, encoders: list[str]) -> Params:
    params = from_dict(Params, {"paths": {"data": str(tmp_path / "data"), "results": str(tmp_path / "results")},
                                "extract": {"encoders": encoders}}, "")
    labels = Layout.of(params).labels
    labels.mkdir(parents=True)
    pd.DataFrame({"lon": [0.0, 10.0, -70.0], "lat": [0.0, 45.0, -10.0]}).to_parquet(labels / "tiny.parquet")
    return params


def _checkpoint(path, nan: bool = False):
    torch.manual_seed(0)
    cfg = LocationEncoderConfig(legendre_polys=3, hidden_dim=8, embed_dim=4)
    state = LocationEncoder.from_config(cfg).state_dict()
    if nan:
        state = {k: torch.full_like(v, float("nan")) for k, v in state.items()}
    torch.save({"state_dict": {f"model.location.{k}": v for k, v in state.items()},
                "hyper_parameters": {"location": dataclasses.asdict(cfg)}}, path)
    return path


@pytest.fixture(autouse=True)
def tiny_grid(monkeypatch):
    monkeypatch.setattr(store, "land_grid", lambda step: (np.array([0.0, 20.0]), np.array([10.0, -5.0])))


def test_an_absolute_checkpoint_path_is_an_encoder(tmp_path):
    ckpt = _checkpoint((tmp_path / "elsewhere").mkdir() or tmp_path / "elsewhere" / "model.ckpt")
    params = _params(tmp_path, [str(ckpt)])
    meta = extract_encoder(str(ckpt), params, ["tiny"])
    assert meta["available"], meta
    folder = encoder_dir(params, str(ckpt))
    assert folder.parent == Layout.of(params).embeddings and folder.name.startswith("ckpt-model-")
    emb, reason = load_embeddings(params, str(ckpt), "tiny")
    assert emb.shape == (3, 4) and reason == ""
    assert ckpt.is_file()  # only read


def test_a_name_never_deletes_outside_the_embeddings_folder(tmp_path):
    victim = tmp_path / "src"
    victim.mkdir()
    (victim / "keep.py").write_text("x = 1\n")
    params = _params(tmp_path, ["raw"])
    for name in ("../../src", str(victim), "..", "../src.ckpt"):
        extract_encoder(name, params, ["tiny"])  # unknown names are recorded unavailable, in a safe folder
    assert (victim / "keep.py").read_text() == "x = 1\n"
    assert all(p.parent == Layout.of(params).embeddings for p in Layout.of(params).embeddings.iterdir())


def test_nan_embeddings_stop_the_stage_and_keep_the_old_ones(tmp_path):
    good, bad = _checkpoint(tmp_path / "good.ckpt"), tmp_path / "bad.ckpt"
    params = _params(tmp_path, [str(good)])
    extract_encoder(str(good), params, ["tiny"])
    before = load_embeddings(params, str(good), "tiny")[0]
    _checkpoint(bad, nan=True)
    bad.replace(good)  # the same name now holds a checkpoint with NaN weights
    with pytest.raises((NonFiniteEmbeddingError, ValueError), match="NaN|finite"):
        extract_encoder(str(good), params, ["tiny"])
    np.testing.assert_array_equal(load_embeddings(params, str(good), "tiny")[0], before)
