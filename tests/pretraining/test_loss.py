"""The contrastive loss, single-process and with features gathered across two gloo ranks."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from satclip.pretraining.loss import clip_logits, clip_loss, gather_features, gathered_clip_loss


def features(n: int = 8, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (F.normalize(torch.randn(n, d, generator=g), dim=1),
            F.normalize(torch.randn(n, d, generator=g), dim=1))


def test_matches_a_hand_computed_cross_entropy():
    img, loc = features()
    scale = torch.tensor(1 / 0.07)  # the multiplier exp(logit_scale), as the model returns it
    logits = (1 / 0.07) * img @ loc.T
    manual = 0
    for i in range(8):
        manual += -torch.log_softmax(logits[i], 0)[i] / 16 - torch.log_softmax(logits[:, i], 0)[i] / 16
    assert clip_loss(img, loc, scale).item() == pytest.approx(manual.item(), rel=1e-6)
    per_image, per_location = clip_logits(img, loc, scale)
    assert torch.equal(per_image.T, per_location)


def test_aligned_pairs_have_low_loss():
    img, _ = features()
    assert clip_loss(img, img, torch.tensor(100.0)).item() < clip_loss(*features(), torch.tensor(100.0)).item()


def test_gather_is_identity_without_a_process_group():
    x = torch.randn(3, 2)
    out, offset = gather_features(x)
    assert out is x and offset == 0


def _worker(rank: int, world: int, init_file: str, result_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    img_all, loc_all = features(8, 4, seed=1)
    img = img_all[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    loc = loc_all[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    loss = gathered_clip_loss(img, loc, torch.tensor(2.0).exp())
    loss.backward()
    torch.save({"loss": loss.detach(), "img_grad": img.grad, "loc_grad": loc.grad}, f"{result_file}.{rank}")
    dist.barrier()  # neither rank tears gloo down while the other still talks to it
    dist.destroy_process_group()


def test_gathered_loss_equals_the_global_batch_loss(tmp_path):
    """Two gloo ranks of 4 pairs each: mean of the rank losses = the 8-pair loss; same gradients."""
    world = 2
    try:
        mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path / "res")), nprocs=world, join=True)
    except mp.ProcessExitedException as err:
        # gloo can abort a rank at interpreter exit ("terminate called without an active
        # exception") after the work is done; only a rank that died before writing its result fails
        if not all(Path(f"{tmp_path / 'res'}.{r}").is_file() for r in range(world)):
            raise
        warnings.warn(f"a gloo rank crashed at exit after writing its result: {err}", stacklevel=1)
    results = [torch.load(f"{tmp_path / 'res'}.{r}") for r in range(world)]
    img_all, loc_all = features(8, 4, seed=1)
    img_all.requires_grad_(True)
    loc_all.requires_grad_(True)
    full = clip_loss(img_all, loc_all, torch.tensor(2.0).exp())
    full.backward()
    assert torch.stack([r["loss"] for r in results]).mean().item() == pytest.approx(full.item(), rel=1e-6)
    # DDP averages gradients over ranks: each rank's local gradient / world = the full-batch one
    img_grad = torch.cat([r["img_grad"] for r in results]) / world
    loc_grad = torch.cat([r["loc_grad"] for r in results]) / world
    torch.testing.assert_close(img_grad, img_all.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loc_grad, loc_all.grad, rtol=1e-5, atol=1e-6)


os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
