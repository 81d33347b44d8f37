"""The embeddings store under ``Layout.embeddings``: write one encoder's embeddings, read them back.

Layout: ``<data>/embeddings/<folder>/<task>.npy`` (float32, (N, d), row-aligned with
``<data>/labels/<task>.parquet``) plus ``<folder>/meta.json``, and the embeddings of a land grid
(``GRID_STEP_DEG``) for the embedding maps: ``<folder>/land_grid.npy`` (float32, (M, d)),
row-aligned with ``<data>/embeddings/land_grid.npy`` ((M, 2) lon, lat). Encoders with one
embedding per pretraining run (``satclip``, ``satclip-random``) keep run 0 there and run r >= 1
in ``<folder>/run-<r>/``; ``meta.json`` says how many (``runs``). ``<folder>`` is
``extraction.names.encoder_folder(name)``. An encoder that cannot be had (offline, say) gets
``meta.json`` with ``available: false`` and the reason, and the run goes on. Every array written
is checked finite first: NaN embeddings, or a checkpoint that fails verification, stop the stage
(naming the encoder) and leave the previous embeddings in place.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from satclip.config import Params
from satclip.data.sampling import land_grid
from satclip.embed import embed_coordinates
from satclip.encoders.pretrained import CheckpointError
from satclip.extraction.named_encoders import resolve_named_encoder, runs_of
from satclip.extraction.names import encoder_folder
from satclip.io import atomic_path, write_json
from satclip.paths import LAND_GRID, Layout, inside

log = logging.getLogger(__name__)

GRID_STEP_DEG = 1.0  # land grid of the embedding maps (the paper's Figure 1 style)


class NonFiniteEmbeddingError(ValueError):
    """An encoder produced NaN or infinite embeddings."""


def encoder_dir(params: Params, name: str) -> Path:
    """The folder of encoder ``name``'s embeddings, checked to lie directly below ``Layout.embeddings``."""
    root = Layout.of(params).embeddings
    folder = root / encoder_folder(name)
    if folder.parent != root or not inside(folder, root) or folder.resolve() == root.resolve():
        raise ValueError(f"encoder {name!r} would write to {folder}, outside {root}; refusing")
    return folder


def _write_npy(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _check_finite(array: np.ndarray, name: str, what: str) -> None:
    bad = ~np.isfinite(array).all(axis=1) if array.ndim == 2 else ~np.isfinite(array)
    if bad.any():
        raise NonFiniteEmbeddingError(
            f"encoder {name!r}: {int(bad.sum()):,} of {len(array):,} embeddings of {what} are NaN or "
            f"infinite (first row {int(np.flatnonzero(bad)[0])}); is the checkpoint corrupt?")


def grid_points(params: Params) -> np.ndarray:
    """The land grid's (M, 2) lon, lat, written once to ``Layout.land_grid_points``."""
    path = Layout.of(params).land_grid_points
    if not path.is_file():
        _write_npy(np.stack(land_grid(GRID_STEP_DEG), axis=1), path)
    return np.load(path)


def extract_encoder(name: str, params: Params, tasks: list[str]) -> dict:
    """Embed every task's points and the land grid with encoder ``name``; return its ``meta.json``.

    Everything is computed and checked before the encoder's old folder is replaced, so a failure
    leaves the previous embeddings in place.
    """
    out = encoder_dir(params, name)
    layout = Layout.of(params)
    tables = {task: pd.read_parquet(layout.label_table(task), columns=["lon", "lat"]) for task in tasks}
    arrays, rows, seconds, metas = {}, {task: len(t) for task, t in tables.items()}, 0.0, []
    # Tasks share most of their points (five sample the same land points): each distinct point is
    # embedded once, then every task (and the land grid) takes its rows from the unique ones.
    parts = [t[["lon", "lat"]].to_numpy(dtype=np.float64) for t in tables.values()] + [grid_points(params)]
    unique, inverse = np.unique(np.concatenate(parts), axis=0, return_inverse=True)   # (U, 2), (N_all,)
    bounds = np.cumsum([0] + [len(p) for p in parts])
    for run in range(runs_of(name, params)):
        try:
            resolved = resolve_named_encoder(name, params, run)
        except CheckpointError:  # a corrupt checkpoint stops the stage (nothing is replaced)
            raise
        except Exception as err:  # offline downloads, missing checkpoints: report, do not fail the run
            meta = {"encoder": name, "available": False, "reason": f"{type(err).__name__}: {err}"}
            log.warning("%s unavailable: %s", name, meta["reason"])
            _replace(out, {}, meta)
            return meta
        prefix = f"run-{run}/" if run else ""
        what = f" (run {run})" if run else ""
        start = time.perf_counter()
        emb = embed_coordinates(resolved.module, unique, batch_size=params.extract.batch_size)   # (U, d)
        seconds += time.perf_counter() - start
        for i, stem in enumerate([*tables, LAND_GRID]):
            rows_of = emb[inverse[bounds[i]:bounds[i + 1]]]
            _check_finite(rows_of, name, (f"task {stem}" if stem != LAND_GRID else "the land grid") + what)
            arrays[prefix + stem] = rows_of.astype(np.float32, copy=False)
        metas.append(resolved.metadata)
    # meta.json is a DVC dependency of every evaluate stage: no wall-clock numbers in it
    meta = {**metas[0], "encoder": name, "folder": out.name, "available": True, "rows": rows,
            "embedding_dim": int(resolved.embedding_dim), "runs": len(metas)}
    if len(metas) > 1 and "checkpoint_sha256" in metas[0]:
        meta["run_checkpoints"] = [{k: m.get(k) for k in ("checkpoint", "checkpoint_sha256")} for m in metas]
    _replace(out, arrays, meta)
    total = sum(rows.values()) * len(metas)
    log.info("%s: %d embedding%s of %s points, %.0f points/s", name, len(metas), "s" if len(metas) > 1 else "",
             f"{sum(rows.values()):,}", total / max(seconds, 1e-9))
    return {**meta, "points_per_s": round(total / max(seconds, 1e-9))}


def _replace(out: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` and ``meta.json`` into a fresh sibling folder, then swap it for ``out``."""
    fresh = out.with_name(f".{out.name}.new")
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir(parents=True)
    for stem, array in arrays.items():  # stem: "<task>" or "run-<r>/<task>"
        (fresh / stem).parent.mkdir(parents=True, exist_ok=True)
        _write_npy(array, fresh / f"{stem}.npy")
    write_json(meta, fresh / "meta.json")
    if out.exists():
        shutil.rmtree(out)
    fresh.rename(out)


def load_embeddings(params: Params, encoder: str, task: str, run: int = 0) -> tuple[np.ndarray | None, str]:
    """Embeddings of ``task`` by ``encoder`` (pretraining run ``run``; or None) and why they are missing."""
    folder = encoder_dir(params, encoder)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None, f"no embeddings for encoder {encoder!r}: run the extract stage"
    meta = json.loads(meta_file.read_text())
    if not meta.get("available", False):
        return None, f"encoder {encoder!r} unavailable: {meta.get('reason', 'unknown reason')}"
    path = folder / (f"run-{run}/" if run else "") / f"{task}.npy"
    if not path.is_file():
        return None, f"no embeddings of task {task!r} for encoder {encoder!r}" + (f" (run {run})" if run else "")
    return np.load(path), ""


def load_run_embeddings(params: Params, encoder: str, task: str) -> tuple[list[np.ndarray] | None, str]:
    """Every run's embeddings of ``task`` by ``encoder`` (``meta.json``'s ``runs``; 1 for most encoders)."""
    first, reason = load_embeddings(params, encoder, task)
    if first is None:
        return None, reason
    meta = json.loads((encoder_dir(params, encoder) / "meta.json").read_text())
    out = [first]
    for run in range(1, int(meta.get("runs", 1))):
        emb, reason = load_embeddings(params, encoder, task, run)
        if emb is None:
            return None, reason
        out.append(emb)
    return out, ""


def grid_embeddings(params: Params) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The land-grid embeddings on disk: lon (M,), lat (M,), {encoder: (M, d)} of every available encoder.

    Read from disk (no model is loaded), in ``extract.encoders`` order.
    """
    path = Layout.of(params).land_grid_points
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the extract stage first")
    points = np.load(path)
    out = {}
    for name in params.extract.encoders:
        emb, _ = load_embeddings(params, name, LAND_GRID)
        if emb is not None:
            out[name] = emb
    return points[:, 0], points[:, 1], out
