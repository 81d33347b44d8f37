"""Pretraining throughput: the default configuration, and a frozen ResNet18 with/without the feature cache.

Writes ``results/bench/pretrain.json``. Run ``python benchmarks/bench_pretrain.py [--quick]``
(``make bench`` runs every benchmark). Timings are medians of timed steps after warm-up, on the
threads set by ``--threads`` (default: the ``runtime.threads`` of params.yaml).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from satclip.config import load_params
from satclip.encoders.image import ImageEncoderConfig
from satclip.pretraining.augment import augment_batch
from satclip.pretraining.training import SatCLIPModule, parameter_groups

OUT = Path("results/bench/pretrain.json")


def time_steps(step, warmup: int, repeats: int) -> float:
    """Median seconds of ``step()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_step(module: SatCLIPModule, batch: dict):
    """One optimizer step of the contrastive loss on a fixed batch (as the training loop does)."""
    opt = torch.optim.AdamW(parameter_groups(module.model, 0.01), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    module.train()

    def step() -> None:
        opt.zero_grad()
        img, loc = module._encode_batch(batch, gen, augment=True)
        module._loss(img, loc).backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller batches")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    params = load_params("params.yaml")
    threads = args.threads or params.runtime.threads
    torch.set_num_threads(threads)
    repeats, warmup = (3, 1) if args.quick else (10, 2)
    records = []

    # 1. the default configuration (Blue Marble patches, small CNN, SH + SIREN)
    cfg = params.pretrain
    batch_size = 128 if args.quick else cfg.trainer.batch_size
    module = SatCLIPModule(asdict(cfg), seed=0)
    side = params.download.bluemarble.patch_px
    batch = {"image": torch.rand(batch_size, cfg.image.in_channels, side, side),
             "point": torch.rand(batch_size, 2) * torch.tensor([360.0, 180.0]) - torch.tensor([180.0, 90.0])}
    sec = time_steps(make_step(module, batch), warmup, repeats)
    records.append({"config": "default (params.yaml)", "backbone": cfg.image.backbone, "input": f"3x{side}x{side}",
                    "feature_cache": False, "batch": batch_size, "samples_per_s": batch_size / sec})

    # 2. a frozen ResNet18 on 13 x 64 x 64 inputs, with and without the feature cache
    frozen = replace(cfg, image=ImageEncoderConfig(backbone="resnet18", in_channels=13, freeze_backbone=True),
                     augment=replace(cfg.augment, crop_px=None))
    batch_size = 32 if args.quick else 128
    module = SatCLIPModule(asdict(frozen), seed=0)
    images = torch.rand(batch_size, 13, 64, 64)
    points = batch["point"][:batch_size] if len(batch["point"]) >= batch_size else torch.zeros(batch_size, 2)
    with torch.no_grad():
        feats = module.model.visual.features(augment_batch(images, points, frozen.augment,
                                                           torch.Generator().manual_seed(0))[0])
    views = frozen.feature_cache.views
    cached_batch = {"features": feats[:, None].repeat(1, views, 1), "point": points}
    for cached, b in ((False, {"image": images, "point": points}), (True, cached_batch)):
        sec = time_steps(make_step(module, b), warmup, repeats)
        records.append({"config": "frozen resnet18", "backbone": "resnet18", "input": "13x64x64",
                        "feature_cache": cached, "views": views if cached else None, "batch": batch_size,
                        "samples_per_s": batch_size / sec})
    speedup = records[-1]["samples_per_s"] / records[-2]["samples_per_s"]
    result = {
        "machine": {"processor": platform.processor() or platform.machine(), "threads": threads,
                    "torch": torch.__version__},
        "records": records,
        "feature_cache_speedup": speedup,
        "note": "the cache's one-off cost (K forward passes of the backbone per image) is not included",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for r in records:
        print(f"{r['config']:>22} cache={r['feature_cache']!s:5} {r['samples_per_s']:10.0f} samples/s")
    print(f"feature cache speed-up: {speedup:.1f}x -> {OUT}")


if __name__ == "__main__":
    main()
