"""Batched augmentations of image / location pairs (run on the training device).

The original SatCLIP augments each image with a random crop, horizontal and vertical flips and
a Gaussian blur (kernel 3, always applied), and jitters coordinates by U[0, 0.01) degrees on
lon and lat (one-sided, also on validation): ``satclip/datamodules/transforms.py`` of
microsoft/satclip@1ead106 (docs/sources.md). Here every random draw comes
from an explicit ``torch.Generator`` so a run is a function of its seed (resumable, exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

JITTER_MODES = ("one-sided", "symmetric")
BLUR_SIGMA = (0.1, 2.0)  # torchvision GaussianBlur's default sigma range, as the original used


@dataclass
class AugmentConfig:
    """Section ``pretrain.augment``."""

    crop_px: int | None = 28  # random crop size; null: no crop
    hflip: bool = True
    vflip: bool = True
    blur: bool = True
    jitter_deg: float = 0.01
    jitter_mode: str = "one-sided"  # the original's; "symmetric" draws U(-j, j)
    augment_val: bool = False  # the original also jitters validation coordinates

    def __post_init__(self) -> None:
        if self.crop_px is not None and self.crop_px < 1:
            raise ValueError(f"pretrain.augment.crop_px must be >= 1 or null, got {self.crop_px}")
        if self.jitter_mode not in JITTER_MODES:
            raise ValueError(f"pretrain.augment.jitter_mode must be one of {', '.join(JITTER_MODES)}; "
                             f"got {self.jitter_mode!r}")
        if self.jitter_deg < 0:
            raise ValueError(f"pretrain.augment.jitter_deg must be >= 0, got {self.jitter_deg}")


def _uniform(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen).to(device)


def random_crop(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random square crops: (B, C, H, W) -> (B, C, size, size)."""
    b, _, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the images ({h}x{w})")
    if size == h == w:
        return images
    oy = (torch.rand(b, generator=gen) * (h - size + 1)).long().to(images.device)  # (B,)
    ox = (torch.rand(b, generator=gen) * (w - size + 1)).long().to(images.device)  # (B,)
    ar = torch.arange(size, device=images.device)
    rows = (oy[:, None] + ar)[:, None, :, None]  # (B, 1, size, 1)
    cols = (ox[:, None] + ar)[:, None, None, :]  # (B, 1, 1, size)
    bidx = torch.arange(b, device=images.device)[:, None, None, None]
    cidx = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return images[bidx, cidx, rows, cols]


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Central square crop: (B, C, H, W) -> (B, C, size, size)."""
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def random_flips(images: torch.Tensor, gen: torch.Generator, hflip: bool, vflip: bool) -> torch.Tensor:
    """Flip each image left-right and/or up-down with probability 1/2."""
    b = images.shape[0]
    if hflip:
        mask = (_uniform(b, gen, images.device) < 0.5)[:, None, None, None]
        images = torch.where(mask, images.flip(-1), images)
    if vflip:
        mask = (_uniform(b, gen, images.device) < 0.5)[:, None, None, None]
        images = torch.where(mask, images.flip(-2), images)
    return images


def gaussian_blur3(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """3x3 Gaussian blur with a per-sample sigma ~ U(0.1, 2.0), reflect padding."""
    b, c, h, w = images.shape
    lo, hi = BLUR_SIGMA
    sigma = lo + (hi - lo) * _uniform(b, gen, images.device).to(images.dtype)  # (B,)
    taps = torch.tensor([-1.0, 0.0, 1.0], device=images.device, dtype=images.dtype)
    k = torch.exp(-(taps[None, :] ** 2) / (2 * sigma[:, None] ** 2))  # (B, 3)
    k = k / k.sum(dim=1, keepdim=True)
    k = k.repeat_interleave(c, dim=0)  # (B*C, 3): one kernel per channel of each sample
    x = F.pad(images.reshape(1, b * c, h, w), (1, 1, 1, 1), mode="reflect")
    x = F.conv2d(x, k[:, None, None, :], groups=b * c)  # horizontal pass
    x = F.conv2d(x, k[:, None, :, None], groups=b * c)  # vertical pass
    return x.reshape(b, c, h, w)


def jitter_coords(coords: torch.Tensor, gen: torch.Generator, amount: float, mode: str) -> torch.Tensor:
    """Add U[0, amount) (one-sided) or U(-amount, amount) (symmetric) degrees to lon and lat.

    Longitude wraps into [-180, 180]; latitude is clamped to [-90, 90].
    """
    if amount == 0:
        return coords
    u = torch.rand(coords.shape, generator=gen).to(device=coords.device, dtype=coords.dtype)  # (B, 2)
    delta = u * amount if mode == "one-sided" else (2 * u - 1) * amount
    out = coords + delta
    lon = torch.remainder(out[:, 0] + 180.0, 360.0) - 180.0
    lat = out[:, 1].clamp(-90.0, 90.0)
    return torch.stack([lon, lat], dim=1)


def augment_batch(images: torch.Tensor, coords: torch.Tensor, cfg: AugmentConfig,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the configured augmentations to a batch of (images (B, C, H, W), coords (B, 2))."""
    if cfg.crop_px is not None:
        images = random_crop(images, cfg.crop_px, gen)
    images = random_flips(images, gen, cfg.hflip, cfg.vflip)
    if cfg.blur:
        images = gaussian_blur3(images, gen)
    return images, jitter_coords(coords, gen, cfg.jitter_deg, cfg.jitter_mode)


def eval_view(images: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """The deterministic view used without augmentation: a central crop of the training size."""
    return center_crop(images, cfg.crop_px) if cfg.crop_px is not None else images
