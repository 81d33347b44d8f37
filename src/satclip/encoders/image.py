"""Image encoders: torchgeo backbones (SSL4EO-S12 weights), a small CNN for Blue Marble, MOSAIKS.

An ``ImageEncoder`` is a backbone producing pre-head features plus a trainable linear head to
the shared embedding size. A frozen backbone has no trainable parameters and stays in eval
mode even when the module is put in train mode, so BatchNorm statistics do not drift (the
original leaves "frozen" ResNets in train mode: ``satclip/model.py`` of
microsoft/satclip@1ead106, see docs/sources.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from satclip.encoders.rcf import RandomConvFeatures

# Backbones from torchgeo by name; the SatCLIP weights are SSL4EO-S12 MoCo, 13 bands
# (Klemmer et al., AAAI 2025, Section 3; torchgeo ``ResNet18_Weights.SENTINEL2_ALL_MOCO`` etc.).
TORCHGEO_BACKBONES = ("resnet18", "resnet50", "vit_small_patch16_224")
# rcf: random convolutional features (MOSAIKS), a fixed featurizer: see encoders/rcf.py.
BACKBONES = ("small_cnn", "rcf", *TORCHGEO_BACKBONES)


@dataclass
class ImageEncoderConfig:
    """The image tower, section ``pretrain.image``."""

    backbone: str = "small_cnn"
    # torchgeo weight name, e.g. "ResNet18_Weights.SENTINEL2_ALL_MOCO"; null: random init.
    weights: str | None = None
    in_channels: int = 3
    freeze_backbone: bool = False
    # small_cnn only: output channels of its conv blocks (each halves the resolution).
    cnn_widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    # rcf only: number of features (two per filter). MOSAIKS used 8,192 (Rolf et al. 2021).
    rcf_features: int = 1024

    @property
    def frozen(self) -> bool:
        """Whether the backbone is fixed: ``freeze_backbone``, or a featurizer with nothing to train (rcf)."""
        return self.freeze_backbone or self.backbone == "rcf"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"pretrain.image.backbone must be one of {', '.join(BACKBONES)}; "
                             f"got {self.backbone!r}")
        if self.weights is not None and self.backbone in ("small_cnn", "rcf"):
            raise ValueError(f"pretrain.image.weights: {self.backbone} has no pretrained weights (use null)")
        if self.in_channels < 1:
            raise ValueError(f"pretrain.image.in_channels must be >= 1, got {self.in_channels}")
        if not self.cnn_widths or min(self.cnn_widths) < 1:
            raise ValueError(f"pretrain.image.cnn_widths must be positive, got {self.cnn_widths}")
        if self.rcf_features < 2 or self.rcf_features % 2:
            raise ValueError(f"pretrain.image.rcf_features must be an even number >= 2, got {self.rcf_features}")


class SmallCNN(nn.Module):
    """Conv(3x3)-BatchNorm-ReLU blocks, each followed by 2x2 max pooling, then global average.

    Runs in channels-last memory format: on the CPU, oneDNN convolutions with few channels
    are ~2.5x faster that way (benchmarks/bench_pretrain.py measures the training step).
    """

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            prev = width
        self.body = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.num_features = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_features)."""
        return self.body(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))


def build_backbone(cfg: ImageEncoderConfig) -> tuple[nn.Module, int]:
    """The backbone of ``cfg`` without a classification head, and its feature size.

    torchgeo backbones with ``weights`` download them (torch hub cache) on first use; with
    ``weights: null`` they are randomly initialized and work offline.
    """
    if cfg.backbone == "small_cnn":
        net = SmallCNN(cfg.in_channels, cfg.cnn_widths)
        return net, net.num_features
    if cfg.backbone == "rcf":  # Gaussian filters until RandomConvFeatures.fit draws them from images
        rcf = RandomConvFeatures(cfg.in_channels, cfg.rcf_features)
        return rcf, rcf.num_features
    from torchgeo import models as tg

    weights = tg.get_weight(cfg.weights) if cfg.weights else None
    if weights is not None and weights.meta.get("in_chans") != cfg.in_channels:
        raise ValueError(f"pretrain.image: weights {cfg.weights} expect {weights.meta.get('in_chans')} "
                         f"input bands, in_channels is {cfg.in_channels}")
    kwargs = {} if weights is not None else {"in_chans": cfg.in_channels}
    net = getattr(tg, cfg.backbone)(weights, num_classes=0, **kwargs)  # num_classes=0: pooled features
    return net, int(net.num_features)


class ImageEncoder(nn.Module):
    """Backbone + linear head: (B, C, H, W) -> (B, embed_dim)."""

    def __init__(self, cfg: ImageEncoderConfig, embed_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone, self.num_features = build_backbone(cfg)
        self.head = nn.Linear(self.num_features, embed_dim)
        self.frozen = cfg.frozen
        if self.frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> ImageEncoder:
        """Set train mode; a frozen backbone stays in eval mode (fixed BatchNorm statistics)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-head backbone features: (B, C, H, W) -> (B, num_features)."""
        if self.frozen:
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, embed_dim), not normalized."""
        return self.head(self.features(x))
