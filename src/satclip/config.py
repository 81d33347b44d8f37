"""Typed sections of ``params.yaml``.

Every stage reads its own section through a dataclass built by ``schema.from_dict``, so an
unknown or misspelled key is an error that names the key and its section (with a suggestion), and
a value of the wrong type names the key and the expected type.
Experiment overlays (``experiments/*.yaml``) hold only the keys they change and are merged on
top of ``params.yaml`` with ``merge``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from satclip.encoders.image import ImageEncoderConfig
from satclip.encoders.location import LocationEncoderConfig
from satclip.evaluation.config import EvaluateConfig
from satclip.pretraining.augment import AugmentConfig
from satclip.schema import ConfigError, from_dict, merge, to_dict

# --------------------------------------------------------------------------------------------
# The schema of params.yaml
# --------------------------------------------------------------------------------------------

_CHOICES_PRETRAIN_SET = ("bluemarble", "s2-sample", "s2-100k")
_CHOICES_ON_CORRUPT = ("fail", "skip")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_lat_range(name: str, lo: float, hi: float) -> None:
    if not -90.0 <= lo < hi <= 90.0:
        raise ConfigError(f"{name}: need -90 <= min_lat < max_lat <= 90, got {lo}, {hi}")


@dataclass
class Paths:
    """Where stages read and write (relative to the repository root)."""

    data: str = "data"
    results: str = "results"
    # Local mirror of the upstream files; null means $SATCLIP_DATA_MIRROR (or none).
    mirror: str | None = None
    # The download cache, outside the repository's DVC outputs (satclip.data.cache); null means
    # $SATCLIP_CACHE, else ~/.cache/satclip. Hugging Face files go to huggingface_hub's cache.
    cache: str | None = None


@dataclass
class Runtime:
    """Process-wide settings shared by every stage."""

    # On a 2-core machine shared with another process one thread ran 4x faster (docs/sources.md,
    # "Measured here").
    threads: int = 1
    # pretraining runs trained side by side in processes of their own (CPU, one device each);
    # results do not depend on it. 1 trains them one after the other (GPUs, DDP).
    pretrain_workers: int = 3

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"runtime.threads must be >= 1, got {self.threads}")
        if self.pretrain_workers < 1:
            raise ConfigError(f"runtime.pretrain_workers must be >= 1, got {self.pretrain_workers}")


@dataclass
class LabelsConfig:
    """Downstream label tables built by the download stage."""

    tasks: list[str] = field(default_factory=lambda: [
        "population", "biomes", "air_temperature", "elevation", "countries", "ecoregions",
        "california_housing"])
    # Land points shared by the elevation, population, countries, biome and ecoregion tasks.
    n_points: int = 20000
    min_lat: float = -60.0
    max_lat: float = 90.0
    # Ecoregions with fewer points than this are dropped from the table.
    min_class_count: int = 1

    def __post_init__(self) -> None:
        from satclip.data.labels import TASKS  # local import: labels imports heavy geo stacks lazily

        for task in self.tasks:
            if task not in TASKS:
                raise ConfigError(f"download.labels.tasks: unknown task {task!r}; "
                                  f"known: {', '.join(TASKS)}")
        if self.n_points < 10:
            raise ConfigError(f"download.labels.n_points must be >= 10, got {self.n_points}")
        _check_lat_range("download.labels", self.min_lat, self.max_lat)


@dataclass
class BlueMarbleConfig:
    """RGB pretraining patches cut from NASA Blue Marble (the offline default)."""

    n_points: int = 20000
    # Without a southern cut Antarctica is 8 % of the points (docs/sources.md, "Measured here").
    min_lat: float = -60.0
    max_lat: float = 80.0
    patch_px: int = 32

    def __post_init__(self) -> None:
        if self.n_points < 1:
            raise ConfigError(f"download.bluemarble.n_points must be >= 1, got {self.n_points}")
        if not 4 <= self.patch_px <= 512:
            raise ConfigError(f"download.bluemarble.patch_px must be in 4..512, got {self.patch_px}")
        _check_lat_range("download.bluemarble", self.min_lat, self.max_lat)


@dataclass
class S2Config:
    """S2-100K from Hugging Face ``torchgeo/s2-100k`` (paper scale)."""

    repo: str = "torchgeo/s2-100k"
    revision: str = "main"
    # Number of the 100 tar shards (1,000 patches each) to download; 100 is the full dataset.
    shards: int = 1
    on_corrupt: str = "fail"

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= 100:
            raise ConfigError(f"download.s2_100k.shards must be in 1..100, got {self.shards}")
        _check_choice("download.s2_100k.on_corrupt", self.on_corrupt, _CHOICES_ON_CORRUPT)


@dataclass
class DownloadConfig:
    """The download stage: raw files, label tables, the pretraining set."""

    pretrain_set: str = "bluemarble"
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    bluemarble: BlueMarbleConfig = field(default_factory=BlueMarbleConfig)
    s2_100k: S2Config = field(default_factory=S2Config)

    def __post_init__(self) -> None:
        _check_choice("download.pretrain_set", self.pretrain_set, _CHOICES_PRETRAIN_SET)


_SCHEDULES = ("constant", "cosine")
_VAL_SPLITS = ("random", "blocks")

# --------------------------------------------------------------------------------------------
# Section ``pretrain`` (the model, augmentations, optimization, trainer)
# --------------------------------------------------------------------------------------------

@dataclass
class OptimConfig:
    """AdamW; the original: lr 1e-4, weight decay 0.01, no schedule.

    The original's settings are in ``satclip/main.py`` and ``configs/default.yaml`` of
    microsoft/satclip@1ead106.
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: str = "constant"  # constant (the original) | cosine (per step, after warm-up)
    warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"pretrain.optim.schedule must be one of {', '.join(_SCHEDULES)}; got {self.schedule!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError("pretrain.optim: need lr > 0, weight_decay >= 0, warmup_epochs >= 0")


@dataclass
class TrainerConfig:
    """Lightning Trainer settings; the paper: batch 512, accumulate 16, 500 epochs, GPU."""

    epochs: int = 25
    batch_size: int = 512
    accumulate_grad_batches: int = 1
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    num_workers: int = 0
    # Gather features across DDP ranks so negatives span the global batch (off: the original).
    gather_negatives: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "accumulate_grad_batches", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"pretrain.trainer.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"pretrain.trainer.num_workers must be >= 0, got {self.num_workers}")


@dataclass
class ValidationConfig:
    """The held-out pairs and the retrieval metrics."""

    split: str = "random"  # random (the original's 10 %) | blocks (whole lon/lat blocks held out)
    fraction: float = 0.1
    block_deg: float = 10.0
    # Fibonacci-lattice points on the sphere; their land points are the candidate locations of
    # image -> location retrieval (median great-circle error).
    candidates_sphere: int = 20000

    def __post_init__(self) -> None:
        if self.split not in _VAL_SPLITS:
            raise ValueError(f"pretrain.validation.split must be one of {', '.join(_VAL_SPLITS)}; got {self.split!r}")
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"pretrain.validation.fraction must be in (0, 1), got {self.fraction}")
        if self.block_deg <= 0 or self.candidates_sphere < 10:
            raise ValueError("pretrain.validation: need block_deg > 0 and candidates_sphere >= 10")


@dataclass
class FeatureCacheConfig:
    """Precompute a frozen backbone's features for ``views`` augmented views per image."""

    enabled: bool = False
    views: int = 4

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"pretrain.feature_cache.views must be >= 1, got {self.views}")


@dataclass
class PretrainConfig:
    """Section ``pretrain``: the model, its augmentations, optimization and the trainer."""

    dataset: str = "bluemarble"
    # independent pretraining runs (seeds derived from ``seed``: see ``pretraining.runs.run_seed``);
    # every ``satclip`` score is a mean over them. 1 for paper-scale configurations.
    runs: int = 3
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    location: LocationEncoderConfig = field(default_factory=LocationEncoderConfig)
    logit_scale_init: float = 2.659260036932778  # log(1 / 0.07): CLIP, kept by SatCLIP
    logit_scale_max: float | None = None  # the original does not clamp; open_clip: log(100)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    feature_cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)

    def __post_init__(self) -> None:
        _check_choice("pretrain.dataset", self.dataset, _CHOICES_PRETRAIN_SET)
        if self.runs < 1:
            raise ValueError(f"pretrain.runs must be >= 1, got {self.runs}")
        if self.feature_cache.enabled and not self.image.frozen:
            raise ValueError("pretrain.feature_cache.enabled needs pretrain.image.freeze_backbone: true "
                             "or backbone rcf (only a frozen backbone's features can be reused)")


@dataclass
class ExtractConfig:
    """Section ``extract``: which location encoders embed the task points."""

    # satclip (ours), satclip-random (untrained), sh (SH features at pretrain L), raw, wrap,
    # geoclip, official names (satclip-resnet18-l10, ...), sh:L, or a checkpoint path.
    encoders: list[str] = field(default_factory=lambda: [
        "satclip", "satclip-random", "sh", "wrap", "raw", "geoclip"])
    batch_size: int = 65536

    def __post_init__(self) -> None:
        if not self.encoders:
            raise ConfigError("extract.encoders must list at least one encoder")
        if len(set(self.encoders)) != len(self.encoders):
            raise ConfigError(f"extract.encoders has duplicates: {self.encoders}")
        from satclip.extraction.names import EncoderNameError, check_encoder_name, encoder_folder

        for name in self.encoders:
            try:
                check_encoder_name(name)
            except EncoderNameError as err:
                raise ConfigError(str(err)) from None
        folders = [encoder_folder(name) for name in self.encoders]
        if len(set(folders)) != len(folders):
            raise ConfigError(f"extract.encoders: two names share an embeddings folder: {self.encoders}")
        if self.batch_size < 1:
            raise ConfigError(f"extract.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class Params:
    """The whole of ``params.yaml``."""

    seed: int = 0
    paths: Paths = field(default_factory=Paths)
    runtime: Runtime = field(default_factory=Runtime)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        if self.pretrain.dataset != self.download.pretrain_set:
            raise ConfigError(f"pretrain.dataset ({self.pretrain.dataset!r}) must name the set the download "
                              f"stage prepares, download.pretrain_set ({self.download.pretrain_set!r})")


def load_params(path: str | Path = "params.yaml", overlays: list[str | Path] = ()) -> Params:
    """Read ``params.yaml`` (plus overlays, applied in order) into a validated ``Params``."""
    data = read_yaml(path)
    names = [str(path)]
    for overlay in overlays:
        data = merge(data, read_yaml(overlay))
        names.append(str(overlay))
    try:
        return from_dict(Params, data, "")
    except ConfigError as err:
        raise ConfigError(f"{' + '.join(names)}: {err}") from None


def params_hash(params: Params) -> str:
    """12 hex digits of the sha256 of every param except ``paths`` (machine-specific locations)."""
    data = {k: v for k, v in to_dict(params).items() if k != "paths"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def params_from_namespace(namespace: dict[str, Any]) -> Params:
    """Validate the sections papermill injected into a notebook's namespace (``globals()``).

    Only names that are sections of ``Params`` are read; the rest of the namespace is ignored.
    Stage notebooks call ``satclip.handrun.notebook_params``, which also handles a notebook
    opened by hand and sends logs to the run log.
    """
    known = [f.name for f in dataclasses.fields(Params)]
    return from_dict(Params, {k: namespace[k] for k in known if k in namespace}, "")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping, with a clear error for a missing or malformed file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


STAMP_TEXT = "params.yaml is valid (satclip check)\n"  # constant: a re-check changes no later stage


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``satclip check`` / ``python -m satclip.config``."""
    parser.add_argument("params", nargs="?", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("overlays", nargs="*", metavar="overlay", help="overlays applied on top, in order")
    parser.add_argument("--stamp", metavar="FILE", default=None,
                        help="on success, write FILE (the check stage's output, which every stage depends on)")


def check_from_args(args: argparse.Namespace) -> int:
    """Validate the params (and overlays) of parsed arguments; 0 when valid, 1 (with the error) if not."""
    import sys

    from satclip.io import write_text

    try:
        load_params(args.params, args.overlays)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.stamp:
        write_text(args.stamp, STAMP_TEXT)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.config [params.yaml] [overlay.yaml ...] [--stamp FILE]``: validate, 1 on error."""
    parser = argparse.ArgumentParser(prog="python -m satclip.config",
                                     description="Check a params file (and overlays) against the schema.")
    add_check_arguments(parser)
    return check_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
