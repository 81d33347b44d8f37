"""The extract stage: location embeddings of every task's points, for every listed encoder.

Encoder names in ``extract.encoders``:

- ``satclip``: the checkpoint of this suite's pretrain stage;
- ``satclip-random``: the same architecture, untrained (seeded): what pretraining adds;
- ``sh``: spherical-harmonic features at the pretrain stage's L, no network;
- ``raw``, ``wrap``, ``direct``, ``cartesian3d``, ``sh:L``, ``geoclip``, an official name
  (``satclip-resnet18-l10`` ...), or a checkpoint path: as ``satclip embed`` takes them.

Layout: ``<data>/embeddings/<encoder>/<task>.npy`` (float32, (N, d), row-aligned with
``<data>/labels/<task>.parquet``) plus ``<encoder>/meta.json``, and the embeddings of a land grid
(``GRID_STEP_DEG``) for the embedding maps: ``<encoder>/land_grid.npy`` (float32, (M, d)),
row-aligned with ``<data>/embeddings/land_grid.npy`` ((M, 2) lon, lat). An encoder that cannot be had
(offline, say) gets ``meta.json`` with ``available: false`` and the reason, and the run goes on.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from satclip.config import Params
from satclip.io import atomic_path, write_json
from satclip.stages.download import data_paths

UNTRAINED_STREAM = 17  # random stream of the untrained encoder's initialization
GRID_STEP_DEG = 1.0  # land grid of the embedding maps (the paper's Figure 1 style)
GRID = "land_grid"  # file stem of the grid embeddings (not a task name: config.py checks tasks against TASKS)


def embeddings_dir(params: Params) -> Path:
    """``<data>/embeddings``."""
    return Path(params.paths.data) / "embeddings"


def checkpoint_path(params: Params) -> Path:
    """The pretrain stage's checkpoint."""
    return Path(params.paths.results) / "model" / "satclip.ckpt"


def resolve_named_encoder(name: str, params: Params):
    """The ``ResolvedEncoder`` for an ``extract.encoders`` entry (see the module docstring)."""
    from satclip.embed import ResolvedEncoder, resolve_encoder
    from satclip.encoders.location import LocationEncoder

    if name == "satclip":
        resolved = resolve_encoder(str(checkpoint_path(params)), progress=False)
        resolved.metadata["encoder"] = "satclip"
        return resolved
    if name == "satclip-random":
        torch.manual_seed(int(np.random.SeedSequence([params.seed, UNTRAINED_STREAM]).generate_state(1)[0]))
        module = LocationEncoder.from_config(params.pretrain.location).eval()
        meta = {"encoder": name, "kind": "untrained", "location_config": asdict(params.pretrain.location),
                "embedding_dim": int(module.embedding_dim)}
        return ResolvedEncoder(module, int(module.embedding_dim), meta)
    if name == "sh":
        resolved = resolve_encoder(f"sh:{params.pretrain.location.legendre_polys}", progress=False)
        resolved.metadata["encoder"] = "sh"
        return resolved
    return resolve_encoder(name, progress=True)


def _write_npy(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def grid_points(params: Params) -> np.ndarray:
    """The land grid's (M, 2) lon, lat, written once to ``<data>/embeddings/land_grid.npy``."""
    from satclip.data.sampling import land_grid

    path = embeddings_dir(params) / f"{GRID}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_npy(np.stack(land_grid(GRID_STEP_DEG), axis=1), path)
    return np.load(path)


def extract_encoder(name: str, params: Params, tasks: list[str]) -> dict:
    """Embed every task's points and the land grid with encoder ``name``; return its ``meta.json``."""
    from satclip.embed import embed_coordinates

    out = embeddings_dir(params) / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        resolved = resolve_named_encoder(name, params)
    except Exception as err:  # offline downloads, missing checkpoints: report, do not fail the run
        meta = {"encoder": name, "available": False, "reason": f"{type(err).__name__}: {err}"}
        write_json(meta, out / "meta.json")
        return meta
    labels = data_paths(params)["labels"]
    rows, seconds = {}, 0.0
    for task in tasks:
        table = pd.read_parquet(labels / f"{task}.parquet", columns=["lon", "lat"])
        start = time.perf_counter()
        emb = embed_coordinates(resolved.module, table[["lon", "lat"]].to_numpy(),
                                batch_size=params.extract.batch_size)
        seconds += time.perf_counter() - start
        _write_npy(emb.astype(np.float32, copy=False), out / f"{task}.npy")
        rows[task] = len(table)
    grid = embed_coordinates(resolved.module, grid_points(params), batch_size=params.extract.batch_size)
    _write_npy(grid.astype(np.float32, copy=False), out / f"{GRID}.npy")
    meta = {**resolved.metadata, "encoder": name, "available": True, "rows": rows,
            "embedding_dim": int(resolved.embedding_dim), "seconds": round(seconds, 3),
            "points_per_s": round(sum(rows.values()) / max(seconds, 1e-9))}
    write_json(meta, out / "meta.json")
    return meta


def run_extract(params: Params) -> pd.DataFrame:
    """Extract every listed encoder for every task; write metrics; return a summary table."""
    torch.set_num_threads(params.runtime.threads)
    tasks = params.download.labels.tasks
    (embeddings_dir(params) / f"{GRID}.npy").unlink(missing_ok=True)  # rewritten from GRID_STEP_DEG
    grid_points(params)  # written even when no encoder is available
    metas = [extract_encoder(name, params, tasks) for name in params.extract.encoders]
    summary = pd.DataFrame([{
        "encoder": m["encoder"], "available": m["available"], "dim": m.get("embedding_dim"),
        "points": sum(m.get("rows", {}).values()), "points_per_s": m.get("points_per_s"),
        "note": m.get("reason", ""),
    } for m in metas])
    write_json({m["encoder"]: {"available": m["available"], "points_per_s": m.get("points_per_s")} for m in metas},
               Path(params.paths.results) / "metrics" / "extract.json")
    return summary


def load_embeddings(params: Params, encoder: str, task: str) -> tuple[np.ndarray | None, str]:
    """Embeddings of ``task`` by ``encoder`` (or None) and a reason when they are missing."""
    folder = embeddings_dir(params) / encoder
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None, f"no embeddings for encoder {encoder!r}: run the extract stage"
    meta = json.loads(meta_file.read_text())
    if not meta.get("available", False):
        return None, f"encoder {encoder!r} unavailable: {meta.get('reason', 'unknown reason')}"
    path = folder / f"{task}.npy"
    if not path.is_file():
        return None, f"no embeddings of task {task!r} for encoder {encoder!r}"
    return np.load(path), ""


def grid_embeddings(params: Params) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The extract stage's land-grid embeddings: lon (M,), lat (M,), {encoder: (M, d)} of every
    available encoder in ``extract.encoders`` (read from disk: no model is loaded)."""
    path = embeddings_dir(params) / f"{GRID}.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the extract stage first")
    points = np.load(path)
    out = {}
    for name in params.extract.encoders:
        emb, _ = load_embeddings(params, name, GRID)
        if emb is not None:
            out[name] = emb
    return points[:, 0], points[:, 1], out
