"""Random convolutional features (MOSAIKS): a frozen image featurizer that needs no training.

MOSAIKS (Rolf et al., Nature Communications 12, 4392, 2021) convolves an image with K filters
that are k x k patches sampled from the training images and ZCA-whitened, applies a ReLU with
a fixed bias to the response and to its negation, and averages each over the image: 2K
features per image. torchgeo implements it as ``torchgeo.models.RCF``; this module wraps it as
a backbone of the image tower (``pretrain.image.backbone: rcf``): filters drawn from the
pretraining run's training images with a seed of its own, stored as buffers (so a checkpoint
holds them), features computed outside ``torch.inference_mode`` so the trainable head can
learn from them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

RCF_KERNEL = 3  # MOSAIKS' filter size: 3 x 3 patches (Rolf et al. 2021, Methods)
RCF_BIAS = -1.0  # torchgeo's default bias of the ReLU, torchgeo.models.RCF (0.10.1)


class RandomConvFeatures(nn.Module):
    """(B, C, H, W) -> (B, features): ``features / 2`` fixed filters, two ReLU means each.

    Built with Gaussian filters (``torchgeo.models.RCF``'s "gaussian" mode); :meth:`fit` replaces
    them by whitened patches of a dataset ("empirical" mode, the MOSAIKS recipe).
    """

    def __init__(self, in_channels: int, features: int, seed: int = 1) -> None:
        super().__init__()
        from torchgeo.models import RCF

        if features < 2 or features % 2:
            raise ValueError(f"pretrain.image.rcf_features must be an even number >= 2, got {features}")
        self.in_channels, self.num_features = in_channels, features
        # torchgeo seeds its generator only for a truthy seed: 0 would draw unseeded filters
        self.rcf = RCF(in_channels, features, RCF_KERNEL, RCF_BIAS, seed=seed or 1, mode="gaussian")

    def fit(self, dataset: Dataset, seed: int) -> None:
        """Draw the filters from ``dataset``'s images (items ``{"image": (C, H, W)}``), whitened.

        Deterministic for one ``seed`` and dataset; the result is the module's buffers.
        """
        from torchgeo.models import RCF

        if len(dataset) == 0:
            raise ValueError("random convolutional features: no training images to draw filters from")
        fitted = RCF(self.in_channels, self.num_features, RCF_KERNEL, RCF_BIAS, seed=seed or 1,
                     mode="empirical", dataset=dataset)  # type: ignore[arg-type]  # indexed only
        with torch.no_grad():
            self.rcf.weights.copy_(fitted.weights.to(self.rcf.weights.dtype))  # (F / 2, C, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_features), a tensor autograd may save (not an inference tensor)."""
        return self.rcf(x).clone()
