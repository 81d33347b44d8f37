"""The on-disk feature cache of a frozen backbone: exactness, keys, reuse after a restart, bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from satclip.data.bluemarble import BlueMarbleDataset
from satclip.paths import Layout
from satclip.pretraining import feature_cache as fc
from satclip.pretraining.augment import augment_batch, eval_view
from satclip.pretraining.training import SatCLIPModule
from satclip.stages.pretrain import run_pretrain
from satclip.streams import TrainStream, stream_seed
from tiny_runs import Interrupt, tiny_params

FROZEN = {"image": {"freeze_backbone": True}}
NO_AUGMENT = {"augment": {"crop_px": None, "hflip": False, "vflip": False, "blur": False}}
METRICS = ("val_loss", "val_top1", "val_top5", "val_median_km")


def module_of(params) -> SatCLIPModule:
    from dataclasses import asdict

    hp = asdict(params.pretrain)
    hp.pop("runs")
    torch.manual_seed(0)
    return SatCLIPModule(hp, seed=params.seed)


def dataset_of(params) -> BlueMarbleDataset:
    return BlueMarbleDataset(Layout.of(params).pretrain_set("bluemarble"))


class CountCompute:
    """Count the calls of ``feature_cache.compute_features`` (the backbone pass)."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = fc.compute_features

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(fc, "compute_features", counted)


def test_cached_features_equal_the_backbone_on_the_same_views(tmp_path):
    params = tiny_params(tmp_path, **FROZEN)
    module, dataset = module_of(params), dataset_of(params)
    rows = np.arange(len(dataset))
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])  # (N, C, H, W)
    points = torch.stack([dataset[i]["point"] for i in range(len(dataset))])
    visual = module.model.visual.eval()
    # the evaluation view
    feats = fc.compute_features(module.model, dataset, params.pretrain, 0, 1, augment=False)
    assert feats.shape == (len(rows), 1, visual.num_features)
    torch.testing.assert_close(feats[:, 0], visual.features(eval_view(images, params.pretrain.augment)), rtol=0, atol=0)
    # augmented view k of loader batch b comes from the stream (seed, FEATURE_CACHE, k, b)
    views = fc.compute_features(module.model, dataset, params.pretrain, 7, 2, augment=True)
    b, k = 1, 1
    batch = slice(b * fc.BATCH, (b + 1) * fc.BATCH)
    gen = torch.Generator().manual_seed(stream_seed(7, TrainStream.FEATURE_CACHE, k, b))
    expected = visual.features(augment_batch(images[batch], points[batch], params.pretrain.augment, gen)[0])
    torch.testing.assert_close(views[batch, k], expected, rtol=0, atol=0)
    assert not torch.equal(views[:, 0], views[:, 1])  # two views, two draws


def test_without_augmentation_a_cached_run_equals_an_uncached_one(tmp_path):
    """Exactness: views = 1 of the un-augmented image is what the uncached step computes."""
    cached = run_pretrain(tiny_params(tmp_path / "a", **FROZEN, **NO_AUGMENT,
                                      feature_cache={"enabled": True, "views": 1}, trainer={"epochs": 2}))
    plain = run_pretrain(tiny_params(tmp_path / "b", **FROZEN, **NO_AUGMENT, trainer={"epochs": 2}))
    for key in METRICS:
        assert cached[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-6), key


def test_stored_on_disk_and_keyed_by_what_the_features_depend_on(tmp_path, monkeypatch):
    params = tiny_params(tmp_path, **FROZEN)
    module, dataset = module_of(params), dataset_of(params)
    root = Layout.of(params).pretrain_set("bluemarble")
    folder, data = tmp_path / "features", fc.data_digest(root)
    rows = np.arange(len(dataset))
    counter = CountCompute(monkeypatch)
    first = fc.load_or_compute(module.model, dataset, rows, params.pretrain, 0, 2, True, folder, data)
    again = fc.load_or_compute(module.model, dataset, rows, params.pretrain, 0, 2, True, folder, data)
    assert counter.calls == 1 and torch.equal(first, again)
    assert len(list(folder.glob("*.pt"))) == 1 and not list(folder.glob(".*tmp"))

    key = fc.cache_key(module.model, params.pretrain, data, rows, 0, 2, True)
    assert fc.cache_key(module.model, params.pretrain, data, rows, 1, 2, True) != key  # seed
    assert fc.cache_key(module.model, params.pretrain, data, rows, 0, 3, True) != key  # views
    assert fc.cache_key(module.model, params.pretrain, data, rows[:-1], 0, 2, True) != key  # rows
    other = module_of(params)
    with torch.no_grad():
        next(other.model.visual.backbone.parameters()).add_(1e-3)  # other backbone weights
    assert fc.cache_key(other.model, params.pretrain, data, rows, 0, 2, True) != key
    head_only = module_of(params)
    with torch.no_grad():
        head_only.model.visual.head.weight.add_(1.0)  # the trainable head is not part of the key
    assert fc.cache_key(head_only.model, params.pretrain, data, rows, 0, 2, True) == key
    (root / "index.csv").write_text((root / "index.csv").read_text().replace("1", "2", 1))
    assert fc.data_digest(root) != data  # other data


def test_a_damaged_file_is_computed_again(tmp_path, monkeypatch, caplog):
    params = tiny_params(tmp_path, **FROZEN)
    module, dataset = module_of(params), dataset_of(params)
    folder, data, rows = tmp_path / "features", "d" * 64, np.arange(len(dataset))
    first = fc.load_or_compute(module.model, dataset, rows, params.pretrain, 0, 1, False, folder, data)
    [path] = folder.glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    counter = CountCompute(monkeypatch)
    with caplog.at_level(logging.WARNING, logger=fc.__name__):
        again = fc.load_or_compute(module.model, dataset, rows, params.pretrain, 0, 1, False, folder, data)
    assert counter.calls == 1 and torch.equal(first, again)
    assert "unreadable" in caplog.text
    torch.save(torch.full((3, 1, 4), float("nan")), path)  # readable, wrong shape and not finite
    with caplog.at_level(logging.WARNING, logger=fc.__name__):
        fc.load_or_compute(module.model, dataset, rows, params.pretrain, 0, 1, False, folder, data)
    assert counter.calls == 2 and "does not hold" in caplog.text


def test_a_resumed_run_reads_the_cache_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    overrides = dict(**FROZEN, feature_cache={"enabled": True, "views": 2}, trainer={"epochs": 4})
    reference = run_pretrain(tiny_params(tmp_path / "ref", **overrides))
    params = tiny_params(tmp_path / "run", **overrides)
    monkeypatch.setenv("SATCLIP_CACHE", str(tmp_path / "cache"))
    counter = CountCompute(monkeypatch)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_pretrain(params, callbacks=[Interrupt(at=2)])
    assert counter.calls == 2  # train views + validation view, computed once
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 2
    resumed = run_pretrain(params)
    assert counter.calls == 2  # the restart read both from disk
    for key in METRICS:
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), key
