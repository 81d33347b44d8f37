"""Batched augmentations: shapes, flips, blur, coordinate jitter."""

from __future__ import annotations

import pytest
import torch

from satclip.pretraining.augment import (
    AugmentConfig,
    augment_batch,
    center_crop,
    gaussian_blur3,
    jitter_coords,
    random_crop,
    random_flips,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_crop_takes_windows_of_the_image():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    out = random_crop(x, 5, gen())
    assert out.shape == (2, 1, 5, 5)
    for b in range(2):
        top, left = divmod(int(out[b, 0, 0, 0] - 64 * b), 8)
        assert torch.equal(out[b, 0], x[b, 0, top:top + 5, left:left + 5])
    with pytest.raises(ValueError, match="larger than the images"):
        random_crop(x, 9, gen())
    assert center_crop(x, 4).shape == (2, 1, 4, 4)


def test_flips_and_determinism():
    x = torch.randn(64, 3, 4, 4)
    out = random_flips(x, gen(1), hflip=True, vflip=False)
    flipped = [(not torch.equal(out[i], x[i])) for i in range(64)]
    assert 10 < sum(flipped) < 54  # about half
    for i in range(64):
        assert torch.equal(out[i], x[i].flip(-1)) or torch.equal(out[i], x[i])
    assert torch.equal(random_flips(x, gen(1), True, False), out)


def test_blur_keeps_constant_images_and_smooths_noise():
    const = torch.full((2, 3, 6, 6), 0.4)
    torch.testing.assert_close(gaussian_blur3(const, gen()), const)
    noise = torch.randn(4, 2, 16, 16)
    assert gaussian_blur3(noise, gen()).std() < noise.std()


def test_jitter_modes():
    coords = torch.tensor([[179.999, 10.0], [0.0, 89.999]]).repeat(500, 1)
    one = jitter_coords(coords, gen(), 0.01, "one-sided")
    delta = one - coords
    lat_delta = delta[::2, 1]
    assert lat_delta.min() >= 0 and lat_delta.max() < 0.01
    assert one[:, 0].abs().max() <= 180 and one[:, 1].max() <= 90  # wrapped / clamped
    sym = jitter_coords(coords, gen(), 0.01, "symmetric") - coords
    assert sym[::2, 1].min() < 0 < sym[::2, 1].max()
    assert torch.equal(jitter_coords(coords, gen(), 0.0, "one-sided"), coords)


def test_augment_batch_and_config_checks():
    images, coords = torch.rand(4, 3, 8, 8), torch.zeros(4, 2)
    out, jittered = augment_batch(images, coords, AugmentConfig(crop_px=6), gen())
    assert out.shape == (4, 3, 6, 6) and jittered.shape == (4, 2)
    with pytest.raises(ValueError, match="jitter_mode"):
        AugmentConfig(jitter_mode="both")
