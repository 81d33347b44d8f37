"""Image encoders: the small CNN, torchgeo backbones, freezing, weights loaded from the hub cache."""

from __future__ import annotations

import pytest
import torch

from satclip.encoders.image import ImageEncoder, ImageEncoderConfig


def test_small_cnn_shapes():
    enc = ImageEncoder(ImageEncoderConfig(backbone="small_cnn", cnn_widths=[4, 8]), embed_dim=6)
    assert enc(torch.rand(3, 3, 16, 16)).shape == (3, 6)
    assert enc.num_features == 8


def test_frozen_backbone_stays_in_eval_mode_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    enc = ImageEncoder(ImageEncoderConfig(backbone="resnet18", in_channels=13, freeze_backbone=True), 8)
    enc.train()
    assert not enc.backbone.training and enc.head.training
    assert not any(p.requires_grad for p in enc.backbone.parameters())
    before = enc.backbone.bn1.running_mean.clone()
    out = enc(torch.rand(2, 13, 64, 64))
    out.sum().backward()
    assert torch.equal(enc.backbone.bn1.running_mean, before)
    assert enc.head.weight.grad is not None


def test_unfrozen_backbone_trains():
    enc = ImageEncoder(ImageEncoderConfig(backbone="resnet18", in_channels=13), 8)
    enc.train()
    assert enc.backbone.training and all(p.requires_grad for p in enc.backbone.parameters())


@pytest.mark.parametrize("backbone,size", [("resnet50", 64), ("vit_small_patch16_224", 224)])
def test_other_backbones_build_offline(backbone, size):
    enc = ImageEncoder(ImageEncoderConfig(backbone=backbone, in_channels=13, freeze_backbone=True), 4)
    with torch.no_grad():
        assert enc(torch.rand(1, 13, size, size)).shape == (1, 4)


def test_named_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch):
    """SSL4EO weights are fetched by torch hub; a file already in its cache is used offline."""
    import timm
    from torchgeo.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = timm.create_model("resnet18", in_chans=13, num_classes=0)
    url = ResNet18_Weights.SENTINEL2_ALL_MOCO.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / url.rsplit("/", 1)[1])
    enc = ImageEncoder(ImageEncoderConfig(backbone="resnet18", weights="ResNet18_Weights.SENTINEL2_ALL_MOCO",
                                          in_channels=13, freeze_backbone=True), 8)
    torch.testing.assert_close(enc.backbone.conv1.weight, reference.conv1.weight)


def test_config_errors():
    with pytest.raises(ValueError, match="backbone must be one of"):
        ImageEncoderConfig(backbone="resnet101")
    with pytest.raises(ValueError, match="small_cnn has no pretrained weights"):
        ImageEncoderConfig(weights="ResNet18_Weights.SENTINEL2_ALL_MOCO")
    with pytest.raises(ValueError, match="expect 13 input bands"):
        ImageEncoder(ImageEncoderConfig(backbone="resnet18", weights="ResNet18_Weights.SENTINEL2_ALL_MOCO",
                                        in_channels=3), 8)
