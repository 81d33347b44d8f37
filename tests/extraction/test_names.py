"""Encoder names: valid names, refused names, and folders that never leave data/embeddings."""

from __future__ import annotations

import pytest

from satclip.config import ConfigError, Params, from_dict
from satclip.extraction.names import EncoderNameError, check_encoder_name, encoder_folder


@pytest.mark.parametrize("name", ["satclip", "satclip-random", "sh", "raw", "wrap", "geoclip", "sh:20",
                                  "sh:5:orthonormal", "satclip-vit16-l40", "results/model/satclip.ckpt",
                                  "/abs/path/to/model.ckpt", "../elsewhere/run.ckpt"])
def test_valid_names(name):
    check_encoder_name(name)
    folder = encoder_folder(name)
    assert "/" not in folder and folder not in (".", "..", "") and not folder.startswith(".")


@pytest.mark.parametrize("name", ["../../src", "/tmp", "..", ".", "", "sattclip", "src/satclip", "a/../b"])
def test_names_that_are_neither_encoders_nor_checkpoints_are_refused(name):
    with pytest.raises(EncoderNameError, match="extract.encoders"):
        check_encoder_name(name)


def test_the_params_check_refuses_a_path_like_encoder_name():
    with pytest.raises(ConfigError, match=r"unknown encoder '\.\./\.\./src'"):
        from_dict(Params, {"extract": {"encoders": ["satclip", "../../src"]}}, "")


def test_checkpoint_paths_get_distinct_hashed_folders():
    a, b = encoder_folder("runs/a/model.ckpt"), encoder_folder("runs/b/model.ckpt")
    assert a != b and a.startswith("ckpt-model-") and b.startswith("ckpt-model-")
    assert encoder_folder("/x/../../etc.ckpt").startswith("ckpt-etc-")
    assert encoder_folder("satclip") == "satclip" and encoder_folder("sh:10") == "sh:10"
