"""Symmetric InfoNCE over image and location features (CLIP's loss).

The contract is open_clip's (``open_clip/loss.py``, ``ClipLoss``): the model returns normalized
features and ``logit_scale.exp()``, the multiplier of the cosine similarities; the loss takes that
multiplier as given and never exponentiates. ``clip_loss`` is the single-process path. ``gather_features`` is kept apart (as open_clip does):
under DDP it all-gathers features from every rank, with gradients flowing back to the local
slice, so negatives span the global batch. The original SatCLIP trains without the gather
(negatives only within a rank's batch of 512; microsoft/satclip at commit 1ead106,
``satclip/loss.py``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def clip_logits(image_features: torch.Tensor, location_features: torch.Tensor,
                logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled cosine similarities.

    Args:
        image_features: (B, d) L2-normalized.
        location_features: (B', d) L2-normalized.
        logit_scale: scalar, the inverse temperature exp(t) (the model's ``scale()``).

    Returns:
        (logits_per_image (B, B'), logits_per_location (B', B)).
    """
    logits_per_image = logit_scale * image_features @ location_features.T  # (B, B')
    return logits_per_image, logits_per_image.T


def clip_loss(image_features: torch.Tensor, location_features: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean of the image->location and location->image cross-entropies; pair i matches i.

    Args:
        image_features: (B, d) L2-normalized image embeddings.
        location_features: (B, d) L2-normalized location embeddings.
        logit_scale: scalar, the inverse temperature exp(t).
    """
    logits_per_image, logits_per_location = clip_logits(image_features, location_features, logit_scale)
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_location, labels)) / 2


def gather_features(features: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather (B, d) features from every DDP rank: (world * B, d) and this rank's offset.

    The gather keeps gradients for the local slice (``torch.distributed.nn.all_gather``). Every
    rank must pass the same B. Outside an initialized process group it returns the input.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features, 0
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(features)
    return torch.cat(parts, dim=0), dist.get_rank() * features.shape[0]


def gathered_clip_loss(image_features: torch.Tensor, location_features: torch.Tensor,
                       logit_scale: torch.Tensor) -> torch.Tensor:
    """InfoNCE of the local rows against the global batch (local-to-global, as open_clip does).

    Local image rows are scored against every location in the global batch and local
    locations against every image, so each rank's loss has the global negatives.
    """
    all_images, offset = gather_features(image_features)
    all_locations, _ = gather_features(location_features)
    n = image_features.shape[0]
    labels = torch.arange(offset, offset + n, device=image_features.device)
    logits_per_image = logit_scale * image_features @ all_locations.T  # (B, world * B)
    logits_per_location = logit_scale * location_features @ all_images.T  # (B, world * B)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_location, labels)) / 2
