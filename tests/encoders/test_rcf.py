"""Random convolutional features (MOSAIKS) as a frozen backbone: filters, gradients, config, training."""

from __future__ import annotations

import pytest
import torch

from satclip.config import ConfigError, Params, from_dict
from satclip.encoders.image import ImageEncoder, ImageEncoderConfig
from satclip.encoders.rcf import RCF_KERNEL, RandomConvFeatures
from satclip.pretraining.training import SatCLIPModule
from satclip.stages.pretrain import run_pretrain
from tiny_runs import tiny_params

RCF = {"image": {"backbone": "rcf", "rcf_features": 16}}  # frozen by construction


class Images(torch.utils.data.Dataset):
    """Items ``{"image": (3, 12, 12)}`` from a seeded generator."""

    def __init__(self, n: int = 20, seed: int = 0) -> None:
        self.images = torch.rand(n, 3, 12, 12, generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i]}


def test_features_are_two_relu_means_per_filter():
    net = RandomConvFeatures(3, 8)
    x = torch.rand(5, 3, 10, 10)
    out = net(x)
    assert out.shape == (5, 8)
    y = torch.nn.functional.conv2d(x, net.rcf.weights, net.rcf.biases)  # (5, 4, 8, 8)
    expected = torch.cat([y.clamp_min(0).mean((2, 3)), (-y).clamp_min(0).mean((2, 3))], 1)
    torch.testing.assert_close(out, expected)
    assert (out >= 0).all()


def test_fit_draws_whitened_patches_deterministically():
    a, b, c = RandomConvFeatures(3, 8), RandomConvFeatures(3, 8), RandomConvFeatures(3, 8)
    gaussian = a.rcf.weights.clone()
    a.fit(Images(), seed=5)
    b.fit(Images(), seed=5)
    c.fit(Images(), seed=6)
    assert a.rcf.weights.shape == (4, 3, RCF_KERNEL, RCF_KERNEL)
    torch.testing.assert_close(a.rcf.weights, b.rcf.weights)
    assert not torch.equal(a.rcf.weights, gaussian) and not torch.equal(a.rcf.weights, c.rcf.weights)
    with pytest.raises(ValueError, match="no training images"):
        a.fit(Images(n=0), seed=5)


def test_the_head_learns_and_the_filters_stay_fixed():
    enc = ImageEncoder(ImageEncoderConfig(backbone="rcf", rcf_features=8), embed_dim=4)
    assert enc.frozen
    assert not [p for p in enc.backbone.parameters() if p.requires_grad]
    enc.train()
    assert not enc.backbone.training  # frozen: stays in eval mode
    before = enc.backbone.rcf.weights.clone()
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    loss = enc(torch.rand(6, 3, 10, 10)).square().sum()
    loss.backward()  # not an inference tensor: autograd can save the features
    assert enc.head.weight.grad is not None and enc.head.weight.grad.abs().sum() > 0
    opt.step()
    torch.testing.assert_close(enc.backbone.rcf.weights, before)
    state = enc.state_dict()
    assert "backbone.rcf.weights" in state  # the filters travel with a checkpoint


@pytest.mark.parametrize(("image", "message"), [
    ({"backbone": "rcf", "rcf_features": 7}, "even number"),
    ({"backbone": "rcf", "weights": "ResNet18_Weights.SENTINEL2_ALL_MOCO"}, "no pretrained"),
])
def test_bad_rcf_config_names_the_key(image, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Params, {"pretrain": {"image": image}}, "")


def test_the_feature_cache_accepts_rcf_without_freeze_backbone():
    params = from_dict(Params, {"pretrain": {"image": {"backbone": "rcf"}, "feature_cache": {"enabled": True}}}, "")
    assert params.pretrain.image.frozen
    with pytest.raises(ConfigError, match="freeze_backbone"):
        from_dict(Params, {"pretrain": {"feature_cache": {"enabled": True}}}, "")


def test_a_pretraining_run_with_random_conv_features_and_the_feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCLIP_CACHE", str(tmp_path / "cache"))
    params = tiny_params(tmp_path, **RCF, feature_cache={"enabled": True, "views": 2}, trainer={"epochs": 2})
    metrics = run_pretrain(params)
    assert 0.0 <= metrics["val_top1"] <= 1.0
    ckpt = torch.load(tmp_path / "results" / "model" / "satclip.ckpt", map_location="cpu", weights_only=False)
    filters = ckpt["state_dict"]["model.visual.backbone.rcf.weights"]
    # the filters are whitened image patches, not the Gaussian draw a new module starts from
    fresh = SatCLIPModule.load_from_checkpoint(tmp_path / "results" / "model" / "satclip.ckpt", map_location="cpu")
    torch.testing.assert_close(fresh.model.visual.backbone.rcf.weights, filters)
    assert not torch.equal(filters, RandomConvFeatures(3, 16).rcf.weights)
