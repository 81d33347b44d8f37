"""Training-step throughput of the paper configurations (ResNet18-L10, ViT16-L40) on one GPU.

Measures, for each overlay in ``experiments/`` resolved over ``params.yaml``, on synthetic
Sentinel-2-like batches (13 bands, 256 px, batch 512, values ``randint(0, 10000) / 10000``,
points uniform on the sphere):

- a full training step without the feature cache: augmentation on the device (crop of
  ``augment.crop_px``, flips, blur, jitter), the frozen backbone, the head and the location
  tower, the CLIP loss, backward, an AdamW step (the overlay's lr and weight decay, the
  module's parameter groups);
- the same step with the feature cache: the cached ``(B, K, F)`` features of ``K =
  feature_cache.views`` views as input (head + location tower only; the backbone never runs);
- a validation step of each (no augmentation, no gradient);
- the one-time cost of the cache: a backbone forward of one view of a batch on the device, the
  host-side augmentation that ``feature_cache.compute_features`` does before moving a view to
  the device, and (CUDA) the host-to-device copy of a batch;
- peak memory (``torch.cuda.max_memory_allocated`` per mode on CUDA; the process' peak RSS so
  far on the CPU) and the projected hours of ``trainer.epochs`` epochs of S2-100K.

The backbones have random weights (``weights: null``): the overlays name torchgeo's SSL4EO-S12
MoCo weights, which need the network, and the step time does not depend on weight values.
Precision: fp32 by default (the paper configurations train with ``precision: 32-true``; PyTorch's
defaults then use TF32 for cuDNN convolutions, not for matmuls); ``--tf32`` / ``--amp bf16``
measure the alternatives.

Run on a GPU machine from the repository root (``benchmarks/gpu_check.sh`` wraps it)::

    python benchmarks/bench_paper_gpu.py                 # cuda if available, 5 warm-up + 20 timed steps
    python benchmarks/bench_paper_gpu.py --device cpu --batch 4 --image-px 32 --warmup 1 --steps 1

Writes ``results/bench/paper_gpu.json`` (``--out``) and prints a table. ``make bench`` skips it
(a CPU cannot run the full shape in reasonable time).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import platform
import resource
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
OUT = Path("results/bench/paper_gpu.json")
DEFAULT_CONFIGS = ["paper-resnet18-l10", "paper-vit16-l40"]
# The encoders take 13 bands: S2-100K's 12 L2A bands + a zero B10 (Klemmer et al., AAAI 2025,
# Section 3; src/satclip/data/s2_100k.py). Synthetic images fill all 13 (timing is the same).
BANDS = 13
S2_100K_PAIRS = 100_000  # S2-100K: 100,000 patches (Klemmer et al., AAAI 2025, Section 3)
S2_100K_PX = 256  # 256 x 256 px uint16 GeoTIFFs (src/satclip/data/s2_100k.py; the overlays' crop_px 256)
# digital numbers / 10,000 (satclip/datamodules/s2_geo_dataset.py of microsoft/satclip@1ead106)
REFLECTANCE_SCALE = 10_000
# 500 epochs, batch 512 (satclip/main.py of microsoft/satclip@1ead106); read from each overlay.
REFERENCE_HOURS = 48.0  # "roughly 2 days on a single A100" (README of microsoft/satclip)
# timm's vit_small_patch16_224 has a fixed img_size of 224 (strict patch embedding: other sizes
# fail with "Input height (32) doesn't match model (224)"), so its images are at least 224 px.
FIXED_INPUT_PX = {"vit_small_patch16_224": 224}


# --------------------------------------------------------------------------------------------
# Environment: run where torchgeo / global-land-mask are missing (a bare GPU image)
# --------------------------------------------------------------------------------------------

def install_substitutes() -> dict[str, str]:
    """Stand-ins for missing packages that do not change what is timed; returns what was replaced.

    - ``torchgeo``: its ``resnet18`` / ``resnet50`` / ``vit_small_patch16_224`` with
      ``weights=None`` are ``timm.create_model(name, *args, **kwargs)`` (torchgeo 0.10.1,
      ``models/resnet.py`` and ``models/vit.py``), so timm builds the same architecture.
    - ``global-land-mask``: only the validation retrieval candidates of ``SatCLIPModule`` use it
      (never a training step); without it every lattice point counts as land.
    """
    subs: dict[str, str] = {}
    try:
        import torchgeo.models  # noqa: F401
    except ImportError as err:
        import timm

        from satclip.encoders.image import TORCHGEO_BACKBONES

        models = types.ModuleType("torchgeo.models")

        def builder(name: str) -> Callable[..., torch.nn.Module]:
            def build(weights: Any = None, *args: Any, **kwargs: Any) -> torch.nn.Module:
                if weights is not None:
                    raise RuntimeError("pretrained weights need torchgeo; the benchmark uses weights=None")
                return timm.create_model(name, *args, **kwargs)
            return build

        for name in TORCHGEO_BACKBONES:
            setattr(models, name, builder(name))

        def get_weight(name: str) -> None:
            raise RuntimeError(f"weights {name} need torchgeo; the benchmark uses weights=None")

        models.get_weight = get_weight
        package = types.ModuleType("torchgeo")
        package.__path__ = []  # a package, so "from torchgeo import models" works
        package.models = models
        sys.modules["torchgeo"], sys.modules["torchgeo.models"] = package, models
        subs["torchgeo"] = (f"not importable ({err}); timm.create_model builds the same backbones "
                            f"(torchgeo's builders with weights=None call it)")
    try:
        import global_land_mask  # noqa: F401
    except ImportError as err:
        import numpy as np

        globe = types.ModuleType("global_land_mask.globe")
        globe.is_land = lambda lat, lon: np.ones(np.broadcast(np.asarray(lat), np.asarray(lon)).shape, bool)
        package = types.ModuleType("global_land_mask")
        package.__path__ = []
        package.globe = globe
        sys.modules["global_land_mask"], sys.modules["global_land_mask.globe"] = package, globe
        subs["global_land_mask"] = (f"not importable ({err}); all lattice points count as land "
                                    f"(validation candidates only, unused here)")
    return subs


def import_satclip() -> None:
    """Make ``satclip`` importable from a checkout without an installed package (``src/`` layout)."""
    try:
        import satclip  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], warmup: int, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of ``steps`` calls of ``fn`` after ``warmup`` calls, synchronized on CUDA."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(steps):
        synchronize(device)
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return times


def summary(times: list[float], batch: int) -> dict[str, float]:
    """Median / mean / min seconds and the steps and samples per second of the median."""
    med = statistics.median(times)
    return {"median_s": med, "mean_s": statistics.fmean(times), "min_s": min(times),
            "steps_per_s": 1.0 / med, "samples_per_s": batch / med, "timed_steps": len(times)}


@contextlib.contextmanager
def peak_memory(device: torch.device, into: dict[str, Any]) -> Iterator[None]:
    """Record the peak memory of the block in ``into``: CUDA allocations, or the process' RSS."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        into["resident_bytes_at_start"] = torch.cuda.memory_allocated(device)
    yield
    if device.type == "cuda":
        into["peak_bytes"] = torch.cuda.max_memory_allocated(device)
        into["peak_kind"] = "torch.cuda.max_memory_allocated (this mode; includes the model and resident batches)"
    else:
        into["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        into["peak_kind"] = "process max RSS so far (CPU; monotone across modes)"


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``--amp bf16``, else nothing (fp32)."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# Model and data
# --------------------------------------------------------------------------------------------

def overlay_path(name: str) -> Path:
    """``experiments/<name>.yaml`` for a bare name, else the path as given."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path if path.is_absolute() else path.resolve() if path.exists() else REPO / path
    return REPO / "experiments" / f"{name}.yaml"


def paper_config(name: str, image_px: int) -> tuple[Any, dict[str, Any]]:
    """The overlay's ``pretrain`` section over params.yaml, with random backbone weights.

    The crop stays the overlay's ``augment.crop_px`` unless the images are smaller (tiny test
    shapes); a backbone with a fixed input size gets images of at least that size.
    """
    from satclip.config import load_params

    path = overlay_path(name)
    params = load_params(REPO / "params.yaml", [path])
    cfg = params.pretrain
    px = max(image_px, FIXED_INPUT_PX.get(cfg.image.backbone, 0))
    crop = cfg.augment.crop_px
    crop_used = None if crop is None else min(crop, px)
    cfg = dataclasses.replace(cfg, image=dataclasses.replace(cfg.image, weights=None),
                              augment=dataclasses.replace(cfg.augment, crop_px=crop_used))
    info = {"overlay": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            "seed": params.seed, "backbone": cfg.image.backbone,
            "weights_in_overlay": params.pretrain.image.weights,
            "weights_used": None, "in_channels": cfg.image.in_channels,
            "freeze_backbone": cfg.image.freeze_backbone,
            "legendre_polys": cfg.location.legendre_polys, "location_dtype": cfg.location.dtype,
            "image_px": px, "crop_px_overlay": crop, "crop_px_used": crop_used,
            "feature_cache_views": cfg.feature_cache.views,
            "feature_cache_enabled_in_overlay": cfg.feature_cache.enabled,
            "epochs": cfg.trainer.epochs, "batch_size_overlay": cfg.trainer.batch_size,
            "accumulate_grad_batches": cfg.trainer.accumulate_grad_batches,
            "precision_overlay": cfg.trainer.precision,
            "validation": {"split": cfg.validation.split, "fraction": cfg.validation.fraction},
            "optim": {"lr": cfg.optim.lr, "weight_decay": cfg.optim.weight_decay,
                      "schedule": cfg.optim.schedule}}
    return cfg, info


def synthetic_batch(n: int, px: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` 13-band ``px``-pixel images (``randint(0, 10000) / 10000``) and points uniform on the sphere."""
    gen = torch.Generator(device).manual_seed(seed)
    images = torch.randint(0, REFLECTANCE_SCALE, (n, BANDS, px, px), generator=gen, device=device,
                           dtype=torch.int32).to(torch.float32).div_(REFLECTANCE_SCALE)
    u = torch.rand(n, 2, generator=gen, device=device)
    lon = u[:, 0] * 360.0 - 180.0
    lat = torch.rad2deg(torch.asin(u[:, 1] * 2.0 - 1.0))  # uniform in area: uniform in sin(lat)
    return {"image": images, "point": torch.stack([lon, lat], dim=1)}


def make_train_step(module: Any, batch: dict[str, torch.Tensor], cfg: Any, device: torch.device,
                    amp: str) -> Callable[[], float | None]:
    """One full optimizer step as ``training_step`` does it (without Lightning's logging).

    Augmentation (or the choice of a cached view) and jitter, both towers, the CLIP loss, the
    finiteness check, backward and AdamW on the module's parameter groups.
    """
    from satclip.pretraining.training import parameter_groups

    opt = torch.optim.AdamW(parameter_groups(module.model, cfg.optim.weight_decay), lr=cfg.optim.lr)
    gen = torch.Generator().manual_seed(0)  # augmentation draws are on the CPU generator, as in training
    module.train()

    def step() -> None:
        opt.zero_grad()
        with autocast(device, amp):
            img, loc = module._encode_batch(batch, gen, augment=True)
            loss = module._loss(img, loc)
        if not torch.isfinite(loss):  # training_step's check (a device sync per step, as there)
            raise FloatingPointError(f"non-finite loss {loss.item()}")
        loss.backward()
        opt.step()

    return step


def make_val_step(module: Any, batch: dict[str, torch.Tensor], device: torch.device,
                  amp: str) -> Callable[[], None]:
    """The loss of a validation batch (evaluation view, no gradient; retrieval metrics left out)."""
    gen = torch.Generator().manual_seed(1)

    def step() -> None:
        module.eval()
        with torch.no_grad(), autocast(device, amp):
            img, loc = module._encode_batch(batch, gen, augment=False)
            module._loss(img, loc)
        module.train()

    return step


def h2d_seconds(tensor: torch.Tensor, device: torch.device, repeats: int = 3) -> float | None:
    """Median seconds to copy a pageable host tensor to ``device`` (the DataLoader does not pin)."""
    if device.type != "cuda":
        return None
    host = tensor.cpu()
    return statistics.median(time_calls(lambda: host.to(device), 1, repeats, device))


# --------------------------------------------------------------------------------------------
# One configuration
# --------------------------------------------------------------------------------------------

def projection(cfg: Any, batch: int, train: dict, train_val: dict,
               cached: dict, cached_val: dict, build: dict) -> dict[str, Any]:
    """Hours of ``epochs`` epochs of S2-100K (validation held out), without and with the cache."""
    fraction = cfg.validation.fraction
    n_val = max(1, int(round(fraction * S2_100K_PAIRS)))  # split_indices' random split
    n_train = S2_100K_PAIRS - n_val
    train_batches = n_train // batch  # drop_last=True (PretrainDataModule.train_dataloader)
    val_batches = math.ceil(n_val / batch)  # validation keeps its last partial batch
    epochs = cfg.trainer.epochs
    views = cfg.feature_cache.views
    h2d_images = build["h2d_s_per_image_batch"] or 0.0  # None on the CPU
    h2d = build["h2d_s_per_batch"] or 0.0
    no_cache_s = epochs * (train_batches * (train["median_s"] + h2d_images)
                           + val_batches * (train_val["median_s"] + h2d_images))
    # feature_cache.compute_features: K augmented views per training image (augmented on the host, then
    # moved and run through the backbone), one central-crop view per validation image
    per_image_train_view = (build["host_augment_s_per_batch"] + h2d + build["backbone_forward_s_per_batch"]) / batch
    per_image_val_view = (h2d + build["backbone_forward_s_per_batch"]) / batch
    build_s = n_train * views * per_image_train_view + n_val * per_image_val_view
    head_s = epochs * (train_batches * cached["median_s"] + val_batches * cached_val["median_s"])
    hours = 1 / 3600
    return {
        "pairs": S2_100K_PAIRS, "train_pairs": n_train, "val_pairs": n_val, "epochs": epochs, "batch": batch,
        "train_batches_per_epoch": train_batches, "val_batches_per_epoch": val_batches,
        "no_cache_hours": no_cache_s * hours,
        "cache_build_hours": build_s * hours,
        "cache_head_hours": head_s * hours,
        "cache_hours": (build_s + head_s) * hours,
        "cache_host_bytes": (n_train * views + n_val) * build["num_features"] * 4,  # float32 (N, K, F)
        "reference_hours": REFERENCE_HOURS,
        "assumptions": [
            "one optimizer step per batch as timed; with accumulate_grad_batches "
            f"{cfg.trainer.accumulate_grad_batches} the forward/backward batches are the same and only "
            "1/accumulate of the AdamW steps run, so the per-batch time is at most the timed one",
            "validation every epoch at the measured validation step (no retrieval metrics, no candidate embedding)",
            "host-to-device copy of each image batch added where measured (CUDA); reading and decoding "
            "S2-100K's GeoTIFFs (DataLoader workers) not included: synthetic batches",
            f"feature cache: {views} augmented views per training image, 1 per validation image, computed "
            "once as satclip.pretraining.feature_cache.compute_features does (host augmentation, copy, "
            "backbone forward); a later run with the same backbone, data and seed reads them from disk",
            "cached features on the device for the head steps (their copy, a few MB a batch, left out)",
            "random split of fraction f: round(f * 100,000) validation pairs (a blocks split varies)",
        ],
    }


def measure_cache_build(visual: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: Any,
                        args: argparse.Namespace, device: torch.device,
                        gen: torch.Generator) -> tuple[dict[str, Any], torch.Tensor]:
    """Per batch of one view: the backbone forward, the host augmentation, the copies; and K views.

    ``feature_cache.compute_features`` augments each view on the host, moves it to the device and runs
    the backbone; the returned ``(B, K, F)`` features are K augmented views of ``batch``.
    """
    from satclip.pretraining.augment import augment_batch

    build: dict[str, Any] = {"num_features": visual.num_features, "amp": args.amp}
    view = augment_batch(batch["image"], batch["point"], cfg.augment, gen)[0]
    visual.eval()
    with peak_memory(device, build):
        with autocast(device, args.amp):
            times = time_calls(lambda: visual.features(view), args.warmup, args.steps, device)
        build["backbone_forward_s_per_batch"] = statistics.median(times)
    host, host_points = batch["image"].cpu(), batch["point"].cpu()
    host_times = time_calls(lambda: augment_batch(host, host_points, cfg.augment, gen), min(args.warmup, 1),
                            max(1, min(args.steps, 2)), torch.device("cpu"))  # seconds each at 512 x 256 px
    build["host_augment_s_per_batch"] = statistics.median(host_times)
    build["host_threads"] = torch.get_num_threads()
    build["h2d_s_per_batch"] = h2d_seconds(view, device)  # one augmented (cropped) view
    build["h2d_s_per_image_batch"] = h2d_seconds(batch["image"], device)  # the full-size images
    with torch.no_grad(), autocast(device, args.amp):
        feats = torch.stack([visual.features(augment_batch(batch["image"], batch["point"], cfg.augment, gen)[0])
                             for _ in range(cfg.feature_cache.views)], dim=1)  # (B, K, F)
    return build, feats.float() if args.amp == "none" else feats


def bench_config(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Every measurement of one paper configuration."""
    from satclip.pretraining.augment import eval_view
    from satclip.pretraining.training import SatCLIPModule

    cfg, info = paper_config(name, args.image_px)
    torch.manual_seed(info["seed"])
    module = SatCLIPModule(dataclasses.asdict(cfg), seed=info["seed"]).to(device)
    visual = module.model.visual
    calls = {"n": 0}
    visual.backbone.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    n_params = sum(p.numel() for p in module.model.parameters())
    n_trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    batch = synthetic_batch(args.batch, info["image_px"], device, seed=info["seed"])
    gen = torch.Generator().manual_seed(0)
    record: dict[str, Any] = {"name": name, **info, "batch": args.batch, "parameters": n_params,
                              "trainable_parameters": n_trainable, "num_features": visual.num_features}

    # 1. the feature cache's one-time cost, and K cached views of the batch
    build, feats = measure_cache_build(visual, batch, cfg, args, device, gen)
    cached_batch = {"features": feats, "point": batch["point"]}
    val_cached_batch = {"features": feats[:, :1], "point": batch["point"]}
    record["cache_build"] = build

    # 2. no cache: images in, backbone every step
    no_cache: dict[str, Any] = {}
    with peak_memory(device, no_cache):
        calls["n"] = 0
        no_cache.update(summary(time_calls(make_train_step(module, batch, cfg, device, args.amp),
                                           args.warmup, args.steps, device), args.batch))
        no_cache["backbone_forward_calls"] = calls["n"]
    val_batch = {"image": eval_view(batch["image"], cfg.augment), "point": batch["point"]}
    no_cache["val"] = summary(time_calls(make_val_step(module, val_batch, device, args.amp),
                                         args.warmup, args.steps, device), args.batch)
    del batch, val_batch

    # 3. with the cache: (B, K, F) features in, head + location tower only
    cache: dict[str, Any] = {}
    with peak_memory(device, cache):
        calls["n"] = 0
        cache.update(summary(time_calls(make_train_step(module, cached_batch, cfg, device, args.amp),
                                        args.warmup, args.steps, device), args.batch))
        cache["val"] = summary(time_calls(make_val_step(module, val_cached_batch, device, args.amp),
                                          args.warmup, args.steps, device), args.batch)
        cache["backbone_forward_calls"] = calls["n"]
    record["no_cache"], record["cache"] = no_cache, cache
    record["cache_speedup"] = cache["steps_per_s"] / no_cache["steps_per_s"]
    record["projection"] = projection(cfg, args.batch, no_cache, no_cache["val"], cache, cache["val"], build)
    del module, cached_batch, val_cached_batch, feats
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return record


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def machine(device: torch.device) -> dict[str, Any]:
    """Versions and the device."""
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "host_threads": torch.get_num_threads(), "device": str(device),
                            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    for pkg in ("timm", "torchgeo", "lightning"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg)
        except Exception:  # not installed
            info[pkg] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update({"device_name": props.name, "device_memory_bytes": props.total_memory,
                     "multiprocessors": props.multi_processor_count,
                     "capability": f"{props.major}.{props.minor}"})
    else:
        info["device_name"] = "cpu"
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=512, help="pairs per batch (the paper's 512)")
    parser.add_argument("--image-px", type=int, default=S2_100K_PX,
                        help="side of the synthetic images (S2-100K: 256; a ViT-224 gets at least 224)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS,
                        help="overlay names in experiments/ (or paths to overlays)")
    parser.add_argument("--amp", choices=("none", "bf16"), default="none",
                        help="none: fp32 as the paper configurations (precision 32-true); bf16: autocast")
    parser.add_argument("--tf32", action="store_true", help="also allow TF32 matmuls (PyTorch's default: off)")
    parser.add_argument("--threads", type=int, default=None, help="host torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if min(args.batch, args.image_px, args.steps) < 1 or args.warmup < 0:
        parser.error("--batch, --image-px and --steps must be >= 1, --warmup >= 0")
    return args


def print_table(result: dict[str, Any]) -> None:
    """Steps per second, peak memory and projected hours of every configuration and mode."""
    gib = 1 / 2**30
    m, a = result["machine"], result["arguments"]
    print(f"{m['device_name']}, torch {m['torch']}, amp={a['amp']}, tf32 matmul={result['precision']['matmul_tf32']}, "
          f"batch {a['batch']}, {a['warmup']} warm-up + {a['steps']} timed steps")
    print(f"{'config':<20} {'mode':<22} {'steps/s':>9} {'samples/s':>10} {'peak GiB':>9} {'hours':>8}")
    for r in result["configs"]:
        p, b = r["projection"], r["cache_build"]
        per_view = b["host_augment_s_per_batch"] + (b["h2d_s_per_batch"] or 0) + b["backbone_forward_s_per_batch"]
        rows = [("no cache", r["no_cache"]["steps_per_s"], r["no_cache"]["peak_bytes"], p["no_cache_hours"]),
                ("cache: build (once)", 1 / per_view, b["peak_bytes"], p["cache_build_hours"]),
                (f"cache: {p['epochs']} epochs, K={r['feature_cache_views']}", r["cache"]["steps_per_s"],
                 r["cache"]["peak_bytes"], p["cache_head_hours"]),
                ("cache: total", None, None, p["cache_hours"])]
        for mode, sps, peak, hours in rows:
            cols = (f"{sps:9.2f} {sps * r['batch']:10.0f}" if sps else f"{'':>9} {'':>10}")
            mem = f"{peak * gib:9.2f}" if peak else f"{'':>9}"
            print(f"{r['name']:<20} {mode:<22} {cols} {mem} {hours:8.2f}")
    print(f"hours: {result['configs'][0]['projection']['epochs'] if result['configs'] else '-'} epochs of S2-100K "
          f"(90 % train) at this batch; the original: ~{REFERENCE_HOURS:.0f} h on one A100. -> {a['out']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write the JSON, print the table; returns the result."""
    args = parse_args(argv)
    import_satclip()
    substitutes = install_substitutes()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device (use --device cpu for a CPU run)")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
    started = time.perf_counter()
    records = [bench_config(name, args, device) for name in args.configs]
    result = {
        "benchmark": "paper configurations: training-step throughput with and without the feature cache",
        "machine": machine(device),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "precision": {"amp": args.amp, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
                      "cudnn_tf32": torch.backends.cudnn.allow_tf32,
                      "cudnn_benchmark": torch.backends.cudnn.benchmark,
                      "note": "fp32 by default, as precision 32-true of the overlays"},
        "weights": "random (weights=None): the overlays' torchgeo SSL4EO-S12 weights need the network; "
                   "the same architecture, and the step time does not depend on weight values",
        "data": f"synthetic: randint(0, {REFLECTANCE_SCALE}) / {REFLECTANCE_SCALE}, {BANDS} bands, "
                f"points uniform on the sphere; resident on the device (copy time measured apart)",
        "substitutes": substitutes,
        "configs": records,
        "wall_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return result


if __name__ == "__main__":
    main()
