"""Multi-process pretraining on the CPU (gloo): ``torchrun`` + ``ddp``, one process + ``ddp_notebook``.

Three tiny two-rank runs (2 epochs, 4 steps of 32 pairs per rank and epoch), each trained once
per module:

- ``torchrun``: ``python -m torch.distributed.run --nproc-per-node 2 -m satclip.stages.pretrain
  params.yaml`` with ``strategy: ddp`` (the cluster path of the README);
- ``notebook``: ``run_pretrain`` with ``strategy: ddp_notebook`` in this process (how the stage's
  notebook runs it: Lightning forks the two ranks), with a ``Probe`` callback on each rank;
- ``gathered``: ``strategy: ddp`` under ``torchrun`` again, with ``gather_negatives: true`` and
  the probe (a script that calls ``run_pretrain`` with it: the stage's entry point takes no
  callbacks).

The probe records each rank's first training batch, the weights that batch met and every step's
loss, so the first step's loss can be recomputed here in one process from the global batch.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import signal
import socket
import subprocess
import sys
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from satclip.config import Params, load_params
from satclip.paths import Layout
from satclip.pretraining.augment import augment_batch
from satclip.pretraining.loss import clip_loss
from satclip.pretraining.runs import HISTORY_COLUMNS
from satclip.pretraining.training import SatCLIPModule
from satclip.schema import to_dict
from satclip.streams import TrainStream, stream_seed
from tiny_runs import N, tiny_params

WORLD = 2
EPOCHS = 2
BATCH = 32
TIMEOUT_S = 150  # one torchrun run takes ~10 s here; a hang (e.g. a rank waiting on gloo) fails instead
REL = 1e-5

# the torchrun runs time out on their own; the ddp_notebook run forks inside this process, so a hang
# there is ended by pytest-timeout (a test sets up at most two runs)
pytestmark = pytest.mark.timeout(2 * TIMEOUT_S + 60)

# everything the trainer's launch reads from the environment: nothing of an outer launcher leaks in
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
              "MASTER_PORT", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID",
              "NODE_RANK")


class Probe(Callback):
    """Per rank: the first training batch, the weights it met, and (epoch, batch, loss) of every step."""

    def __init__(self, out) -> None:
        self.out, self.first, self.losses = Path(out), None, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.first is None:
            self.first = {"batch": {k: v.detach().clone() for k, v in batch.items()},
                          "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
                          "epoch": trainer.current_epoch, "batch_idx": batch_idx}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append((trainer.current_epoch, batch_idx, float(loss)))

    def on_train_end(self, trainer, module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        torch.save({**self.first, "losses": self.losses, "world": trainer.world_size,
                    "strategy": type(trainer.strategy).__name__, "global_step": trainer.global_step},
                   self.out / f"probe-{trainer.global_rank}.pt")


# the same callback in the script that torchrun starts (the stage's entry point takes no callbacks)
PROBE_SCRIPT = "\n".join([
    "import sys", "from pathlib import Path", "", "import torch", "from lightning.pytorch.callbacks import Callback",
    "", "from satclip.config import load_params", "from satclip.stages.pretrain import run_pretrain", "", "",
    inspect.getsource(Probe), "",
    "if __name__ == '__main__':", "    run_pretrain(load_params(sys.argv[1]), callbacks=[Probe(sys.argv[2])])", ""])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_params(root: Path, strategy: str, gather: bool) -> tuple[Params, Path]:
    """Tiny params for two CPU ranks, written to ``root/params.yaml`` (data and results under root)."""
    params = tiny_params(root, trainer={"epochs": EPOCHS, "batch_size": BATCH, "accelerator": "cpu",
                                        "devices": WORLD, "num_nodes": 1, "strategy": strategy,
                                        "gather_negatives": gather})
    params = replace(params, runtime=replace(params.runtime, threads=1))
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(params), sort_keys=False))
    assert load_params(path) == params  # the file the launcher reads says what this test thinks
    return params, path


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 ARGS`` (c10d rendezvous on a free loopback port), with a timeout."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(WORLD),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--max-restarts", "0",
           *args]
    # a session of its own, so that a hang ends with the launcher *and* its workers killed
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s: {' '.join(cmd)}\n"
                    f"stdout:\n{out[-3000:]}\nstderr:\n{err[-6000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def check_launch(result: subprocess.CompletedProcess, params: Params) -> None:
    """Fail unless the launch succeeded.

    A rank aborted by gloo at interpreter exit (SIGABRT) after the run had written every output
    is tolerated with a warning, as in ``test_loss``.
    """
    if result.returncode == 0:
        return
    layout = Layout.of(params)
    state = layout.run_dir() / "run.json"
    finished = (layout.metrics("pretrain").is_file() and state.is_file()
                and json.loads(state.read_text()).get("finished") is True)
    aborted = "SIGABRT" in result.stderr or "exitcode: -6" in result.stderr
    if not (finished and aborted):
        pytest.fail(f"torchrun exited with {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
                    f"stderr:\n{result.stderr[-6000:]}")
    warnings.warn(f"a gloo rank aborted at exit after the run finished (torchrun {result.returncode})",
                  stacklevel=1)


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory) -> dict:
    """The pretrain stage under torchrun, ``strategy: ddp``, gather off."""
    root = tmp_path_factory.mktemp("torchrun")
    params, path = ddp_params(root, "ddp", gather=False)
    result = torchrun(["-m", "satclip.stages.pretrain", str(path)], cwd=root)
    check_launch(result, params)
    return {"params": params, "result": result}


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory) -> dict:
    """``run_pretrain`` with ``strategy: ddp_notebook`` in this process, gather off, probed.

    Lightning forks the two ranks from this (pytest's) process, as it forks them from the kernel
    of the stage's notebook; CUDA is not initialized here, which is all the fork launcher needs.
    Python warns that the process is multi-threaded when it forks: the other threads are native
    ones (jemalloc's background thread, idle library pools), present in a kernel too, and the
    ranks use none of them. The port, the gloo interface and the working folder are set for the
    run and restored after (Lightning also sets MASTER_PORT in the parent).
    """
    from satclip.stages.pretrain import run_pretrain

    root = tmp_path_factory.mktemp("notebook")
    params, _ = ddp_params(root, "ddp_notebook", gather=False)
    with pytest.MonkeyPatch.context() as mp:
        for key in LAUNCH_ENV:
            mp.delenv(key, raising=False)
        mp.setenv("MASTER_ADDR", "127.0.0.1")
        mp.setenv("MASTER_PORT", str(free_port()))
        mp.setenv("GLOO_SOCKET_IFNAME", "lo")
        mp.chdir(root)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"This process .* is multi-threaded, use of fork\(\)",
                                    category=DeprecationWarning)
            metrics = run_pretrain(params, callbacks=[Probe(root / "probe")])
    return {"params": params, "metrics": metrics, "probe": load_probes(root / "probe")}


@pytest.fixture(scope="module")
def gathered_run(tmp_path_factory) -> dict:
    """The probed run under torchrun, ``strategy: ddp``, ``gather_negatives: true``."""
    root = tmp_path_factory.mktemp("gathered")
    params, path = ddp_params(root, "ddp", gather=True)
    script = root / "probed_pretrain.py"
    script.write_text(PROBE_SCRIPT)
    result = torchrun([str(script), str(path), str(root / "probe")], cwd=root)
    check_launch(result, params)
    return {"params": params, "result": result, "probe": load_probes(root / "probe")}


def load_probes(folder: Path) -> list[dict]:
    found = sorted(p.name for p in folder.glob("probe-*.pt")) if folder.is_dir() else []
    assert found == [f"probe-{r}.pt" for r in range(WORLD)], f"probe files of the ranks: {found}"
    return [torch.load(folder / f"probe-{r}.pt", map_location="cpu", weights_only=False) for r in range(WORLD)]


def stage_metrics(params: Params) -> dict:
    return json.loads(Layout.of(params).metrics("pretrain").read_text())


def stage_history(params: Params) -> pd.DataFrame:
    return pd.read_csv(Layout.of(params).history)


def steps_per_epoch(params: Params) -> int:
    """Optimizer steps per epoch of each rank: its 1/WORLD share of the training pairs, full batches."""
    return stage_metrics(params)["train_pairs"] // WORLD // BATCH


def check_outputs(params: Params) -> dict:
    """The stage's outputs of a finished two-rank run; return its metrics."""
    layout = Layout.of(params)
    metrics = stage_metrics(params)
    assert metrics["runs"] == 1 and metrics["epochs"] == EPOCHS, metrics
    assert metrics["train_pairs"] + metrics["val_pairs"] == N, metrics
    for key in ("val_loss", "val_top1", "val_top5", "val_median_km"):
        assert math.isfinite(metrics[key]), f"{key} = {metrics[key]}"
    history = stage_history(params)
    # one row per epoch: only rank 0 writes the history
    assert history["epoch"].tolist() == list(range(EPOCHS)), history
    assert history[HISTORY_COLUMNS[1:-1]].notna().all().all(), history
    state = json.loads((layout.run_dir() / "run.json").read_text())
    assert state["finished"] is True and state["metrics"] == metrics["run"]["0"], state
    # each rank trained on its half of the pairs: half the steps of a single process (Lightning's
    # CSV log, written by rank 0: the step of each epoch's metrics is the epoch's last step)
    per_epoch = steps_per_epoch(params)
    assert per_epoch == 4, f"{metrics['train_pairs']} pairs / {WORLD} ranks / batch {BATCH}: {per_epoch} steps"
    logged = pd.concat([pd.read_csv(f) for f in sorted((layout.run_dir() / "logs").glob("version_*/metrics.csv"))])
    steps = logged.dropna(subset=["train_loss"])[["epoch", "step"]].values.tolist()
    expected = [[e, (e + 1) * per_epoch - 1] for e in range(EPOCHS)]
    assert steps == expected, (f"(epoch, step) of the logged train loss {steps}, expected {expected} for "
                               f"{metrics['train_pairs']} pairs / {WORLD} ranks / batch {BATCH}")
    ckpt = torch.load(layout.checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["pretrain"]["trainer"]["strategy"] == params.pretrain.trainer.strategy
    return metrics


def check_probes(probes: list[dict], params: Params) -> None:
    """Both ranks trained under DDP on disjoint data; the history's train loss is their mean."""
    per_epoch = steps_per_epoch(params)
    for rank, probe in enumerate(probes):
        assert probe["world"] == WORLD and probe["strategy"] == "DDPStrategy", (rank, probe["world"], probe["strategy"])
        assert [(e, b) for e, b, _ in probe["losses"]] == [(e, b) for e in range(EPOCHS) for b in range(per_epoch)], (
            f"rank {rank} steps {[(e, b) for e, b, _ in probe['losses']]}")
    points = [{tuple(p) for p in probe["batch"]["point"].tolist()} for probe in probes]
    assert all(len(p) == BATCH for p in points) and not points[0] & points[1], (
        f"first batches of the ranks share {len(points[0] & points[1])} of {BATCH} pairs")
    for k, v in probes[0]["state"].items():  # DDP starts every rank from rank 0's weights
        assert torch.equal(v, probes[1]["state"][k]), f"initial weights differ between ranks: {k}"
    history = stage_history(params)
    for epoch in range(EPOCHS):
        steps = [loss for probe in probes for e, _, loss in probe["losses"] if e == epoch]
        mean = sum(steps) / len(steps)
        reported = history.loc[history["epoch"] == epoch, "train_loss"].item()
        assert reported == pytest.approx(mean, rel=REL), (
            f"epoch {epoch}: history train_loss {reported} != mean of the {len(steps)} step losses of "
            f"both ranks {mean}")


def first_step_embeddings(probes: list[dict], params: Params) -> tuple[list, list, torch.Tensor]:
    """Each rank's first-step image and location embeddings, recomputed here in one process.

    As ``SatCLIPModule.training_step`` does on each rank: the weights the step met, train mode
    (BatchNorm statistics of the rank's own batch), dropout and augmentation streams of
    (seed, epoch 0, batch 0) on rank 0 and of (seed, epoch 0, batch 0, rank) on rank r >= 1: each
    rank draws its own crops and dropout masks for the other pairs it holds.
    """
    hparams = asdict(params.pretrain)
    hparams.pop("runs")
    module = SatCLIPModule(hparams, seed=params.seed)
    module.load_state_dict(probes[0]["state"])
    module.train()
    images, locations = [], []
    with torch.no_grad():
        for rank, probe in enumerate(probes):
            assert (probe["epoch"], probe["batch_idx"]) == (0, 0)
            of_rank = (rank,) if rank else ()
            torch.manual_seed(stream_seed(params.seed, TrainStream.DROPOUT, 0, 0, *of_rank))
            gen = torch.Generator().manual_seed(stream_seed(params.seed, TrainStream.AUGMENT_TRAIN, 0, 0, *of_rank))
            batch = probe["batch"]
            pixels, coords = augment_batch(batch["image"], batch["point"], params.pretrain.augment, gen)
            images.append(module.model.encode_image(pixels))
            locations.append(module.model.encode_location(coords))
        scale = module.model.scale()
    return images, locations, scale


# --------------------------------------------------------------------------------------------


def test_pretrain_stage_under_torchrun_with_ddp(torchrun_run):
    params, result = torchrun_run["params"], torchrun_run["result"]
    metrics = check_outputs(params)
    # the two workers joined one gloo group; only rank 0 printed the stage's metrics
    assert f"GLOBAL_RANK: 1, MEMBER: 2/{WORLD}" in result.stderr, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    assert printed == metrics, f"stdout {printed} != {Layout.of(params).metrics('pretrain')} {metrics}"


def test_pretrain_with_ddp_notebook_in_one_process(notebook_run):
    params = notebook_run["params"]
    metrics = check_outputs(params)
    assert notebook_run["metrics"] == metrics, (notebook_run["metrics"], metrics)
    check_probes(notebook_run["probe"], params)


def test_torchrun_and_ddp_notebook_train_the_same_model(torchrun_run, notebook_run):
    """Same seed, same ranks, same gloo reductions: equal bit for bit (measured here, 1 thread)."""
    a, b = torchrun_run["params"], notebook_run["params"]
    ma, mb = stage_metrics(a), stage_metrics(b)
    assert set(ma) == set(mb) and set(ma["run"]["0"]) == set(mb["run"]["0"]), (sorted(ma), sorted(mb))
    differ = {k: (v, mb["run"]["0"][k]) for k, v in ma["run"]["0"].items() if mb["run"]["0"][k] != v}
    assert not differ, f"metrics (torchrun+ddp, ddp_notebook) that differ: {differ}"
    assert ma == mb, f"{Layout.of(a).metrics('pretrain')}: torchrun+ddp {ma} != ddp_notebook {mb}"
    ha, hb = stage_history(a), stage_history(b)
    for col in [c for c in HISTORY_COLUMNS if c != "epoch_seconds"]:
        for epoch, (va, vb) in enumerate(zip(ha[col], hb[col], strict=True)):
            assert va == vb, f"history {col}, epoch {epoch}: torchrun+ddp {va!r} != ddp_notebook {vb!r}"
    sa = torch.load(Layout.of(a).checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    sb = torch.load(Layout.of(b).checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert sorted(sa) == sorted(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), (
            f"trained weights {key}: max |torchrun+ddp - ddp_notebook| = {(sa[key] - sb[key]).abs().max().item()}")


def test_ddp_without_gathered_negatives_scores_each_rank_on_its_own_batch(notebook_run):
    params, probes = notebook_run["params"], notebook_run["probe"]
    images, locations, scale = first_step_embeddings(probes, params)
    for rank, probe in enumerate(probes):
        local = clip_loss(images[rank], locations[rank], scale).item()
        reported = probe["losses"][0][2]
        assert reported == pytest.approx(local, rel=REL), (
            f"rank {rank}, first step: reported loss {reported} != loss of its own {BATCH} pairs {local}")
    full = clip_loss(torch.cat(images), torch.cat(locations), scale).item()
    mean = sum(p["losses"][0][2] for p in probes) / WORLD
    # what gathering would give is larger (more negatives per row): the check above tells them apart
    assert full > mean * (1 + 1e-3), f"gather off: mean rank loss {mean}, global-batch loss {full}"


def test_gathered_negatives_under_ddp_span_both_ranks(gathered_run, notebook_run):
    params, probes = gathered_run["params"], gathered_run["probe"]
    off_params, off = notebook_run["params"], notebook_run["probe"]
    metrics = check_outputs(params)
    check_probes(probes, params)
    # the first step of both runs met the same weights and the same batches: only the loss differs
    for rank in range(WORLD):
        for k, v in off[rank]["batch"].items():
            assert torch.equal(v, probes[rank]["batch"][k]), f"rank {rank}: first batch {k} differs on/off"
        for k, v in off[rank]["state"].items():
            assert torch.equal(v, probes[rank]["state"][k]), f"rank {rank}: initial weights {k} differ on/off"
    images, locations, scale = first_step_embeddings(probes, params)
    full = clip_loss(torch.cat(images), torch.cat(locations), scale).item()
    on = [p["losses"][0][2] for p in probes]
    assert all(math.isfinite(x) for x in on), on
    # local rows against the global batch: the ranks' mean is the InfoNCE of all 2 x 32 pairs
    assert sum(on) / WORLD == pytest.approx(full, rel=REL), (
        f"gather on, first step: mean of the rank losses {on} = {sum(on) / WORLD} != loss of the "
        f"{WORLD * BATCH}-pair global batch computed in one process {full}")
    for rank in range(WORLD):
        first_off = off[rank]["losses"][0][2]
        # more negatives for the same rows: every row's cross-entropy grows
        assert on[rank] > first_off, f"rank {rank}, first step: gather on {on[rank]} <= gather off {first_off}"
    off_metrics = stage_metrics(off_params)
    assert metrics["val_loss"] != pytest.approx(off_metrics["val_loss"], rel=1e-3), (
        f"val_loss gather on {metrics['val_loss']} = off {off_metrics['val_loss']}")
    on_train = stage_history(params)["train_loss"].tolist()
    off_train = stage_history(off_params)["train_loss"].tolist()
    assert on_train != pytest.approx(off_train, rel=1e-3), f"train_loss per epoch: on {on_train}, off {off_train}"
