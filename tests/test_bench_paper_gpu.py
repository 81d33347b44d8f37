"""benchmarks/bench_paper_gpu.py on the CPU at a tiny shape: the JSON's fields, and the cache skips the backbone."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math

import pytest
import torch

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "bench_paper_gpu.py"
WARMUP, STEPS, BATCH = 1, 1, 4


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_paper_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load_bench()


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "sub" / "paper_gpu.json"
    # ResNet18 at 32 px (crop shrunk to the image); the ViT takes 224 px only, whatever --image-px says
    result = bench.main(["--device", "cpu", "--batch", str(BATCH), "--image-px", "32", "--warmup", str(WARMUP),
                         "--steps", str(STEPS), "--out", str(out)])
    return result, out


def finite_positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_json_has_every_field_with_sane_values(run):
    result, out = run
    assert json.loads(out.read_text()) == result  # written where --out says (under tmp_path)
    assert set(result) >= {"machine", "arguments", "precision", "weights", "data", "substitutes", "configs"}
    assert result["machine"]["torch"] == torch.__version__ and result["machine"]["device"] == "cpu"
    assert result["arguments"]["batch"] == BATCH and result["precision"]["amp"] == "none"
    assert "random" in result["weights"]
    assert [r["name"] for r in result["configs"]] == ["paper-resnet18-l10", "paper-vit16-l40"]
    resnet, vit = result["configs"]
    assert (resnet["backbone"], resnet["legendre_polys"], resnet["image_px"]) == ("resnet18", 10, 32)
    assert (resnet["crop_px_overlay"], resnet["crop_px_used"]) == (256, 32)
    assert (vit["backbone"], vit["legendre_polys"], vit["image_px"], vit["crop_px_used"]) == (
        "vit_small_patch16_224", 40, 224, 224)
    for r in result["configs"]:
        assert r["weights_in_overlay"].endswith("_Weights.SENTINEL2_ALL_MOCO") and r["weights_used"] is None
        assert r["freeze_backbone"] and r["in_channels"] == 13 and r["feature_cache_views"] == 4
        assert 0 < r["trainable_parameters"] < r["parameters"]  # frozen backbone
        for mode in ("no_cache", "cache"):
            m = r[mode]
            assert m["timed_steps"] == STEPS
            for key in ("median_s", "steps_per_s", "samples_per_s", "peak_bytes"):
                assert finite_positive(m[key]), (r["name"], mode, key, m[key])
            assert finite_positive(m["val"]["steps_per_s"])
            assert m["samples_per_s"] == pytest.approx(m["steps_per_s"] * BATCH)
        b = r["cache_build"]
        for key in ("backbone_forward_s_per_batch", "host_augment_s_per_batch", "peak_bytes"):
            assert finite_positive(b[key]), (r["name"], key)
        assert b["h2d_s_per_batch"] is None  # no copy on the CPU
        assert finite_positive(r["cache_speedup"])
        p = r["projection"]
        assert (p["pairs"], p["train_pairs"], p["val_pairs"], p["epochs"]) == (100_000, 90_000, 10_000, 500)
        assert p["train_batches_per_epoch"] == 90_000 // BATCH and p["val_batches_per_epoch"] == 10_000 // BATCH
        for key in ("no_cache_hours", "cache_build_hours", "cache_head_hours", "cache_hours", "cache_host_bytes"):
            assert finite_positive(p[key]), (r["name"], key)
        assert p["cache_hours"] == pytest.approx(p["cache_build_hours"] + p["cache_head_hours"])
        assert p["cache_host_bytes"] == (90_000 * 4 + 10_000) * r["num_features"] * 4
        assert p["assumptions"] and p["reference_hours"] == 48


def test_the_cached_step_never_runs_the_backbone(run):
    result, _ = run
    for r in result["configs"]:
        assert r["no_cache"]["backbone_forward_calls"] == WARMUP + STEPS
        assert r["cache"]["backbone_forward_calls"] == 0


def test_cached_step_trains_the_head_without_the_backbone(bench):
    """Independently of the script's own counter: a forward hook and the head's weights."""
    from satclip.pretraining.training import SatCLIPModule

    cfg, info = bench.paper_config("paper-resnet18-l10", 16)
    module = SatCLIPModule(dataclasses.asdict(cfg), seed=0)
    calls = []
    module.model.visual.backbone.register_forward_hook(lambda *_: calls.append(1))
    batch = bench.synthetic_batch(4, info["image_px"], torch.device("cpu"))
    assert batch["image"].shape == (4, 13, 16, 16) and 0 <= batch["image"].min() and batch["image"].max() < 1
    assert batch["point"][:, 0].abs().max() <= 180 and batch["point"][:, 1].abs().max() <= 90
    cached = {"features": torch.randn(4, cfg.feature_cache.views, module.model.visual.num_features),
              "point": batch["point"]}
    head = module.model.visual.head.weight.detach().clone()
    bench.make_train_step(module, cached, cfg, torch.device("cpu"), "none")()
    assert not calls and not torch.equal(head, module.model.visual.head.weight)
    bench.make_train_step(module, batch, cfg, torch.device("cpu"), "none")()
    assert len(calls) == 1


def test_overlay_names_resolve(bench):
    assert bench.overlay_path("paper-vit16-l40") == REPO / "experiments" / "paper-vit16-l40.yaml"
    assert bench.overlay_path("experiments/paper-vit16-l40.yaml") == REPO / "experiments" / "paper-vit16-l40.yaml"
