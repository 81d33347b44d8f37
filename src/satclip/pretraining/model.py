"""SatCLIP: an image tower and a location tower projecting to one embedding space.

Both towers' outputs are L2-normalized; their scaled dot products are the logits of the
contrastive loss. The logit scale is learnable, initialized to log(1 / 0.07) (CLIP; the value
of the original SatCLIP: microsoft/satclip at commit 1ead106, ``satclip/model.py``), and optionally clamped (open_clip clamps at
log 100; the original does not clamp).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from satclip.encoders.image import ImageEncoder, ImageEncoderConfig
from satclip.encoders.location import LocationEncoder, LocationEncoderConfig

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP (Radford et al. 2021), kept by SatCLIP


class SatCLIP(nn.Module):
    """``visual`` (images -> d) and ``location`` ((lon, lat) -> d) with a learnable logit scale."""

    def __init__(self, image: ImageEncoderConfig, location: LocationEncoderConfig,
                 logit_scale_init: float = LOGIT_SCALE_INIT, logit_scale_max: float | None = None) -> None:
        super().__init__()
        self.location = LocationEncoder.from_config(location)
        self.visual = ImageEncoder(image, embed_dim=location.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.logit_scale_max = logit_scale_max

    def scale(self) -> torch.Tensor:
        """The inverse temperature ``exp(logit_scale)`` that multiplies the cosine similarities.

        ``logit_scale`` (the learnable parameter, a log) is clamped at ``logit_scale_max`` first
        when that is set. This is what the loss takes (open_clip's contract).
        """
        if self.logit_scale_max is None:
            return self.logit_scale.exp()
        return self.logit_scale.clamp(max=self.logit_scale_max).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, d), L2-normalized."""
        return F.normalize(self.visual(images), dim=-1)

    def encode_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Cached pre-head backbone features (B, F) -> (B, d), L2-normalized."""
        return F.normalize(self.visual.head(features), dim=-1)

    def encode_location(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, 2) (lon, lat) degrees -> (B, d), L2-normalized, in the image tower's dtype."""
        dtype = self.visual.head.weight.dtype
        return F.normalize(self.location(coords).to(dtype), dim=-1)

    def forward(self, images: torch.Tensor,
                coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalized image (B, d) and location (B, d) features and the scale ``exp(logit_scale)``."""
        return self.encode_image(images), self.encode_location(coords), self.scale()
