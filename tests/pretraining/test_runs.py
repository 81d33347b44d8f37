"""Resuming a pretraining run whose checkpoints are truncated or unreadable."""

from __future__ import annotations

import json
import logging
import os

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from satclip.config import Params
from satclip.paths import Layout
from satclip.pretraining.runs import build_trainer, checkpoint_epoch, prepare_run_dir
from satclip.stages.pretrain import run_pretrain
from tiny_runs import Interrupt, tiny_params

METRICS = ("val_loss", "val_top1", "val_top5", "val_median_km")
RUNS_LOGGER = "satclip.pretraining.runs"


class EpochsRun(Callback):
    """Record the epochs this process trains."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.epochs.append(trainer.current_epoch)


def truncate_half(path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """Metrics of an uninterrupted tiny run."""
    return run_pretrain(tiny_params(tmp_path_factory.mktemp("ref")))


def interrupted(tmp_path, at: int = 2) -> Params:
    params = tiny_params(tmp_path)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_pretrain(params, callbacks=[Interrupt(at=at)])
    return params


def test_truncated_last_ckpt_resumes_from_best_and_matches_uninterrupted(tmp_path, reference, caplog):
    params = interrupted(tmp_path)  # last.ckpt and best.ckpt: epoch 1
    run_dir = Layout.of(params).run_dir()
    older_best = (run_dir / "best.ckpt").read_bytes()
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        run_pretrain(params, callbacks=[Interrupt(at=4)])  # resumes, stops with last.ckpt at epoch 3
    assert checkpoint_epoch(run_dir / "last.ckpt") == 3
    # best.ckpt older than last.ckpt (as when validation stops improving): resuming from it must
    # still end where the uninterrupted run does
    (run_dir / "best.ckpt").write_bytes(older_best)
    truncate_half(run_dir / "last.ckpt")
    trained = EpochsRun()
    with caplog.at_level(logging.WARNING, logger=RUNS_LOGGER):
        resumed = run_pretrain(params, callbacks=[trained])
    message = " ".join(r.getMessage() for r in caplog.records if r.name == RUNS_LOGGER)
    assert str(run_dir / "last.ckpt") in message
    assert "unreadable" in message and "resuming from best.ckpt (epoch 1)" in message
    assert trained.epochs == [2, 3, 4]
    for key in METRICS:
        assert resumed[key] == pytest.approx(reference[key], abs=1e-6), key
    assert resumed["epochs"] == 5
    assert pd.read_csv(Layout.of(params).history)["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert checkpoint_epoch(run_dir / "last.ckpt") == 4  # a readable last.ckpt again
    # Lightning's CSV log: one version per start (3 here), step losses and epoch metrics
    versions = sorted((run_dir / "logs").glob("version_*/metrics.csv"))
    assert len(versions) == 3
    log = pd.read_csv(versions[-1])
    assert log["train_loss_step"].notna().any() and log["val_loss"].notna().any()


def test_progress_lines_within_long_epochs(tmp_path, caplog, monkeypatch):
    """An epoch longer than PROGRESS_SECONDS logs batch, loss and rate (0 s here: every batch)."""
    import satclip.pretraining.runs as runs

    monkeypatch.setattr(runs, "PROGRESS_SECONDS", 0.0)
    params = tiny_params(tmp_path)
    with caplog.at_level(logging.INFO, logger=RUNS_LOGGER):
        run_pretrain(params)
    lines = [r.getMessage() for r in caplog.records if "batches/s" in r.getMessage()]
    assert lines and "epoch 1/" in lines[0] and ", batch 1/" in lines[0] and "train loss" in lines[0]


def test_truncated_last_and_best_restart_from_scratch(tmp_path, reference, caplog):
    params = interrupted(tmp_path)
    run_dir = Layout.of(params).run_dir()
    truncate_half(run_dir / "last.ckpt")
    truncate_half(run_dir / "best.ckpt")
    trained = EpochsRun()
    with caplog.at_level(logging.WARNING, logger=RUNS_LOGGER):
        metrics = run_pretrain(params, callbacks=[trained])
    message = " ".join(r.getMessage() for r in caplog.records if r.name == RUNS_LOGGER)
    assert str(run_dir / "last.ckpt") in message and "restarting the run from scratch" in message
    assert trained.epochs == [0, 1, 2, 3, 4] and metrics["epochs"] == 5
    for key in METRICS:
        assert metrics[key] == pytest.approx(reference[key], abs=1e-6), key
    assert pd.read_csv(Layout.of(params).history)["epoch"].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("damaged", ["last.ckpt", "best.ckpt"])
def test_a_finished_run_with_an_unreadable_checkpoint_is_trained_again(tmp_path, reference, caplog, damaged):
    params = tiny_params(tmp_path)
    run_pretrain(params)
    paths = Layout.of(params)
    truncate_half(paths.run_dir() / damaged)
    trained = EpochsRun()
    with caplog.at_level(logging.WARNING, logger=RUNS_LOGGER):
        metrics = run_pretrain(params, callbacks=[trained])
    message = " ".join(r.getMessage() for r in caplog.records if r.name == RUNS_LOGGER)
    assert str(paths.run_dir() / damaged) in message and "restarting the run from scratch" in message
    assert trained.epochs == [0, 1, 2, 3, 4]
    for key in METRICS:
        assert metrics[key] == pytest.approx(reference[key], abs=1e-6), key
    torch.load(paths.checkpoint, map_location="cpu", weights_only=False)  # the copied checkpoint is readable
    assert json.loads((paths.run_dir() / "run.json").read_text())["finished"] is True


def test_prepare_run_dir_decisions(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def lightning_file(name: str, epoch: int) -> None:
        torch.save({"state_dict": {"w": torch.zeros(3)}, "epoch": epoch}, run_dir / name)

    def state(finished: bool) -> None:
        metrics = {"metrics": {"val_loss": 1.0}} if finished else {}
        (run_dir / "run.json").write_text(json.dumps({"hash": "h", "finished": finished, **metrics}))

    lightning_file("last.ckpt", 3)
    lightning_file("best.ckpt", 2)
    state(finished=True)
    assert prepare_run_dir(run_dir, "h") == ("done", None)
    state(finished=False)
    assert prepare_run_dir(run_dir, "h") == ("resume", run_dir / "last.ckpt")
    (run_dir / "last.ckpt").write_bytes(b"garbage")  # not a zip archive
    with caplog.at_level(logging.WARNING, logger=RUNS_LOGGER):
        assert prepare_run_dir(run_dir, "h") == ("resume", run_dir / "best.ckpt")
    assert "resuming from best.ckpt (epoch 2)" in caplog.text and not (run_dir / "last.ckpt").exists()
    assert prepare_run_dir(run_dir, "h") == ("resume", run_dir / "best.ckpt")  # last.ckpt missing: same
    (run_dir / "best.ckpt").write_bytes(b"")
    assert prepare_run_dir(run_dir, "h") == ("fresh", None)
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]  # emptied
    lightning_file("last.ckpt", 0)
    assert prepare_run_dir(run_dir, "other hash") == ("fresh", None)


def test_runs_train_side_by_side_as_one_after_the_other(tmp_path):
    from dataclasses import replace

    from satclip.pretraining.runs import run_seed, train

    assert run_seed(7, 0) == 7 and run_seed(7, 1) != run_seed(7, 2) and 0 <= run_seed(7, 1) < 2**31
    side = tiny_params(tmp_path / "side", runs=2, trainer={"epochs": 2})
    assert side.runtime.pretrain_workers >= 2
    one = tiny_params(tmp_path / "one", runs=2, trainer={"epochs": 2})
    one = replace(one, runtime=replace(one.runtime, pretrain_workers=1))
    m_side, m_one = train(side), train(one)
    assert m_side == m_one and m_side["runs"] == 2 and set(m_side["run"]) == {"0", "1"}
    assert m_side["val_top1"] == pytest.approx((m_side["run"]["0"]["val_top1"] + m_side["run"]["1"]["val_top1"]) / 2)
    assert m_side["std"]["val_loss"] is not None and m_side["run"]["0"] != m_side["run"]["1"]
    a, b = Layout.of(side), Layout.of(one)
    for r in (0, 1):
        sa = torch.load(a.run_checkpoint(r), map_location="cpu", weights_only=False)["state_dict"]
        sb = torch.load(b.run_checkpoint(r), map_location="cpu", weights_only=False)["state_dict"]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.run_checkpoint(1).name == "satclip-run1.ckpt" and a.checkpoint.name == "satclip.ckpt"
    history = pd.read_csv(a.history)
    assert history["run"].tolist() == [0, 0, 1, 1] and history["epoch"].tolist() == [0, 1, 0, 1]
    # fewer runs later: the extra run's checkpoint goes; run 0 is reused, not retrained
    stamp = (a.run_dir(0) / "last.ckpt").stat().st_mtime_ns
    fewer = train(replace(side, pretrain=replace(side.pretrain, runs=1)))
    assert not a.run_checkpoint(1).exists() and fewer["runs"] == 1
    assert fewer["val_top1"] == m_side["run"]["0"]["val_top1"]
    assert (a.run_dir(0) / "last.ckpt").stat().st_mtime_ns == stamp


def test_a_run_of_the_old_layout_moves_into_run_0(tmp_path):
    from satclip.pretraining.runs import train

    params = tiny_params(tmp_path, trainer={"epochs": 1})
    first = train(params)
    layout = Layout.of(params)
    for f in layout.run_dir(0).iterdir():  # what a checkout of the single-run layout left behind
        f.rename(layout.pretrain_runs / f.name)
    layout.run_dir(0).rmdir()
    stamp = (layout.pretrain_runs / "last.ckpt").stat().st_mtime_ns
    assert train(params) == first
    assert (layout.run_dir(0) / "last.ckpt").stat().st_mtime_ns == stamp  # moved, not retrained


class _RisingValLoss(L.LightningModule):
    """A model whose validation loss rises every epoch: the best epoch is the first."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - 1.0).pow(2).sum() + 0.0 * batch[0].sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_ckpt_is_written_every_epoch_even_when_validation_gets_worse(tmp_path):
    """A resume starts from the last finished epoch, not the best one (Lightning >= 2.6's save_last)."""
    params = tiny_params(tmp_path, trainer={"epochs": 3})
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(4, 1)), batch_size=2)
    trainer = build_trainer(params, tmp_path / "run")
    trainer.fit(_RisingValLoss(), train_dataloaders=loader, val_dataloaders=loader)
    assert torch.load(tmp_path / "run" / "best.ckpt", weights_only=False)["epoch"] == 0
    assert torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)["epoch"] == 2


def test_a_worker_ends_when_its_stage_is_gone():
    """Side-by-side workers watch the stage process: a killed stage leaves no run training on."""
    import subprocess
    import sys

    code = ("import os, sys, time\nfrom satclip.pretraining.runs import _exit_with_parent\n"
            "_exit_with_parent(int(sys.argv[1]), 0.05)\ntime.sleep(float(sys.argv[2]))\n")
    alive = subprocess.run([sys.executable, "-c", code, str(os.getpid()), "1"], timeout=120)
    assert alive.returncode == 0   # its parent (this test) lives: the worker finishes its job
    orphan = subprocess.run([sys.executable, "-c", code, "1", "60"], timeout=120)   # pid 1 is not its parent
    assert orphan.returncode == 1
