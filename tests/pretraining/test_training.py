"""Pretraining: smoke run, determinism, resume after an interruption, NaN loss, feature cache."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from satclip.config import Params
from satclip.paths import Layout
from satclip.pretraining.analysis import load_module
from satclip.pretraining.training import EpochShuffle, FiniteLossError, split_indices
from satclip.stages.pretrain import run_pretrain
from tiny_runs import Interrupt, tiny_params


def test_smoke_run_writes_checkpoint_metrics_history(tmp_path):
    params = tiny_params(tmp_path)
    metrics = run_pretrain(params)
    paths = Layout.of(params)
    assert paths.checkpoint.is_file() and paths.history.is_file()
    saved = json.loads(paths.metrics("pretrain").read_text())
    assert saved["epochs"] == 5 and set(saved) >= {"val_loss", "val_top1", "val_top5", "val_median_km"}
    assert metrics["val_top1"] > 2 * metrics["chance_top1"]  # learns something in 5 tiny epochs
    history = pd.read_csv(paths.history)
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    # the checkpoint has what the location-encoder loader reads
    ckpt = torch.load(paths.checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["location"]["legendre_polys"] == 3
    assert any(k.startswith("model.location.") for k in ckpt["state_dict"])
    module = load_module(paths.checkpoint)
    out = module.model.encode_location(torch.tensor([[0.0, 0.0], [10.0, 5.0]]))
    assert out.shape == (2, 8) and torch.allclose(out.norm(dim=1), torch.ones(2))


def test_a_finished_run_is_reused_not_retrained(tmp_path):
    params = tiny_params(tmp_path)
    first = run_pretrain(params)
    paths = Layout.of(params)
    paths.checkpoint.unlink()
    stamp = (paths.run_dir() / "last.ckpt").stat().st_mtime_ns
    assert run_pretrain(params) == first
    assert paths.checkpoint.is_file() and (paths.run_dir() / "last.ckpt").stat().st_mtime_ns == stamp


def test_two_runs_agree(tmp_path):
    a = run_pretrain(tiny_params(tmp_path / "a"))
    b = run_pretrain(tiny_params(tmp_path / "b"))
    for key in ("val_loss", "val_top1", "val_top5", "val_median_km"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    reference = run_pretrain(tiny_params(tmp_path / "ref"))
    params = tiny_params(tmp_path / "int")
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_pretrain(params, callbacks=[Interrupt(at=2)])
    paths = Layout.of(params)
    assert (paths.run_dir() / "last.ckpt").is_file() and not paths.checkpoint.exists()
    resumed = run_pretrain(params)
    for key in ("val_loss", "val_top1", "val_top5", "val_median_km"):
        assert resumed[key] == pytest.approx(reference[key], abs=1e-6), key
    assert pd.read_csv(paths.history)["epoch"].tolist() == [0, 1, 2, 3, 4]


def test_changed_config_does_not_resume(tmp_path):
    params = tiny_params(tmp_path)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_pretrain(params, callbacks=[Interrupt(at=1)])
    changed = replace(params, seed=1)
    metrics = run_pretrain(changed)  # a different run: starts from scratch, 5 epochs
    assert metrics["epochs"] == 5


class PoisonLoss(Callback):
    """Make the loss NaN from epoch ``at`` on."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == self.at:
            module._loss = lambda img, loc: torch.tensor(float("nan"), requires_grad=True)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    params = tiny_params(tmp_path)
    with pytest.raises(FiniteLossError, match="non-finite training loss .* at epoch 1, batch 0"):
        run_pretrain(params, callbacks=[PoisonLoss(at=1)])
    paths = Layout.of(params)
    assert (paths.run_dir() / "last.ckpt").is_file()  # epoch 0's
    assert not paths.checkpoint.exists() and not paths.metrics("pretrain").exists()


def test_missing_pretraining_set_is_reported(tmp_path):
    params = tiny_params(tmp_path)
    (tmp_path / "data" / "pretrain" / "bluemarble" / "images.npy").unlink()
    with pytest.raises(Exception, match="images.npy: missing; run the download stage first"):
        run_pretrain(params)


def test_splits_and_shuffle_are_seeded():
    pts = np.stack([np.linspace(-170, 170, 1000), np.linspace(-80, 80, 1000)], axis=1)
    cfg = Params().pretrain.validation
    tr, va = split_indices(pts, cfg, 0)
    assert len(va) == 100 and len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 1000
    tr2, va2 = split_indices(pts, cfg, 0)
    assert np.array_equal(va, va2)
    blocks = replace(cfg, split="blocks", block_deg=20.0, fraction=0.3)
    tr, va = split_indices(pts, blocks, 0)
    key = lambda i: (np.floor((pts[i, 0] + 180) / 20), np.floor((pts[i, 1] + 90) / 20))  # noqa: E731
    assert not {key(i) for i in tr} & {key(i) for i in va}  # no block on both sides
    s = EpochShuffle(10, seed=0)
    first = list(s)
    s.set_epoch(1)
    assert sorted(first) == list(range(10)) and list(s) != first
    s.set_epoch(0)
    assert list(s) == first
