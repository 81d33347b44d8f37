"""Evaluate one task: every encoder x probe x split x seed, aggregated into tidy rows.

``evaluate_task`` returns the rows of ``results/tables/downstream.csv`` for one task;
``run_task`` also returns every fit's scores (the verdict's paired comparisons; plus the probe's
validation loss as metric ``val_loss`` where it has one), per-point test
predictions of the first seed (for residual maps) and per-fit timings with the chosen
hyper-parameters.

An encoder may have one embedding per pretraining run (``satclip``, ``satclip-random``): seed i
of ``evaluate.seeds`` fits the embedding of run ``i % runs`` (run i paired with probe seed i), so
its mean and std cover pretraining runs and probe seeds together; ``n_pretrain_runs`` counts the
runs a row averages over.

Bad input never stops the other encoders: an unavailable encoder, embeddings whose row count
differs from the table, non-finite embeddings, a split without training or test points, a
classification split whose test classes never occur in training, or a failed fit each give rows
with a NaN ``mean`` and a ``note`` that says why.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from satclip.evaluation.config import EvaluateConfig
from satclip.evaluation.metrics import VAL_LOSS, classification_scores, metric_names, regression_scores
from satclip.evaluation.probes import ProbeSkipped, make_probe
from satclip.evaluation.splits import Split, make_splits

log = logging.getLogger(__name__)

RESULT_COLUMNS = ["task", "encoder", "probe", "split", "metric", "mean", "std", "n_seeds", "n_pretrain_runs",
                  "n_train", "n_test", "n_test_seen", "note"]
SCORE_COLUMNS = ["task", "encoder", "probe", "split", "seed", "run", "metric", "value"]
PREDICTION_COLUMNS = ["encoder", "probe", "split", "seed", "row", "lon", "lat", "target", "prediction"]
TIMING_COLUMNS = ["encoder", "probe", "split", "seed", "seconds", "selected"]


class EvaluationError(ValueError):
    """A task's inputs cannot be evaluated (the message names the task and encoder)."""


@dataclass
class TaskEvaluation:
    """Everything ``run_task`` produces for one task."""

    results: pd.DataFrame      # RESULT_COLUMNS, one row per encoder x probe x split x metric
    predictions: pd.DataFrame  # PREDICTION_COLUMNS: test points of the first seed
    timings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TIMING_COLUMNS))
    scores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SCORE_COLUMNS))


def task_kind(task: str, table: pd.DataFrame | None = None) -> str:
    """"regression" or "classification": from ``TASKS``, else from the target's dtype."""
    from satclip.data.labels import TASKS

    if task in TASKS:
        return TASKS[task].kind
    if table is not None and "target" in table.columns:
        return "regression" if pd.api.types.is_numeric_dtype(table["target"]) else "classification"
    raise EvaluationError(f"task {task!r}: unknown task and no target column to infer its kind from")


def check_table(task: str, table: pd.DataFrame, cfg: EvaluateConfig) -> None:
    """Raise ``EvaluationError`` if ``table`` lacks a needed column or is empty."""
    need = ["lon", "lat", "target"] + (["continent"] if "continent" in cfg.splits else [])
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise EvaluationError(f"task {task}: label table lacks columns {missing}")
    if len(table) == 0:
        raise EvaluationError(f"task {task}: the label table is empty")


def check_embeddings(task: str, table: pd.DataFrame, encoder: str, emb: np.ndarray) -> np.ndarray:
    """Return ``emb`` as a C-contiguous float32 (n, d) array, or raise ``EvaluationError``.

    The rows must match the task table's rows one to one, and every value must be finite.
    """
    emb = np.asarray(emb)
    if emb.ndim != 2:
        raise EvaluationError(f"task {task}, encoder {encoder}: embeddings must be 2-d (n, d), "
                              f"got shape {emb.shape}")
    if emb.shape[0] != len(table):
        raise EvaluationError(f"task {task}, encoder {encoder}: embeddings have {emb.shape[0]} rows "
                              f"but the label table has {len(table)}")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    bad = int(np.size(emb) - np.count_nonzero(np.isfinite(emb)))
    if bad:
        raise EvaluationError(f"task {task}, encoder {encoder}: {bad} non-finite embedding values")
    return emb


def usable_rows(table: pd.DataFrame) -> np.ndarray:
    """(n,) bool: rows with a target and finite lon/lat in range."""
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(dtype=np.float64)
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(dtype=np.float64)
    ok = table["target"].notna().to_numpy() & np.isfinite(lon) & np.isfinite(lat)
    return ok & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)


@dataclass
class _Fold:
    """One split's targets, shared by every encoder and probe."""

    split: Split
    train: np.ndarray     # (n_train,) row indices used for fitting (rare classes removed)
    y_train: np.ndarray   # (n_train,) targets for the probe (standardized for regression)
    y_val: np.ndarray     # (n_val,)
    y_test: np.ndarray    # (n_test,) original units / labels
    mean: float = 0.0     # regression: training mean and scale of the target
    scale: float = 1.0
    problem: str = ""     # why this split cannot be scored ("" when it can)
    seen: np.ndarray | None = None  # classification: (n_test,) bool, test class occurs in training


def _fold(split: Split, target: np.ndarray, kind: str, min_class_count: int) -> _Fold:
    train = split.train
    if kind == "classification" and min_class_count > 1 and len(train):
        labels, counts = np.unique(target[train], return_counts=True)
        keep = np.isin(target[train], labels[counts >= min_class_count])
        train = train[keep]
    where = f" on {split.holdout}" if split.holdout else ""
    seen = np.isin(target[split.test], np.unique(target[train])) if kind == "classification" else None
    if len(split.test) == 0:
        problem = f"no test points{where}"
    elif len(train) == 0:
        problem = "no training points" + (f" with >= {min_class_count} per class" if min_class_count > 1 else "")
    elif seen is not None and not seen.any():
        problem = f"no test class{where} occurs in training"
    else:
        problem = ""
    if kind == "regression":
        y = target.astype(np.float64)
        mean = float(y[train].mean()) if len(train) else 0.0
        scale = float(y[train].std()) if len(train) else 1.0
        scale = scale if scale > 0 else 1.0
        return _Fold(split, train, (y[train] - mean) / scale, (y[split.val] - mean) / scale,
                     y[split.test], mean, scale, problem)
    return _Fold(split, train, target[train], target[split.val], target[split.test], problem=problem, seen=seen)


def _folds(table: pd.DataFrame, cfg: EvaluateConfig, kind: str) -> dict[int, list[_Fold]]:
    target = table["target"].to_numpy()
    if kind == "classification":
        target = np.asarray(table["target"].astype(str).to_numpy(), dtype=object)
    return {seed: [_fold(s, target, kind, cfg.min_class_count) for s in make_splits(table, cfg, seed)]
            for seed in cfg.seeds}


def _fit_predict(probe_name: str, kind: str, fold: _Fold, x: np.ndarray, cfg: EvaluateConfig,
                 seed: int) -> tuple[np.ndarray, dict[str, float], dict]:
    """Fit one probe on one fold; return (test predictions in original units, scores, selected)."""
    probe = make_probe(probe_name, kind, cfg, seed)
    probe.fit(x[fold.train], fold.y_train, x[fold.split.val], fold.y_val)
    pred = probe.predict(x[fold.split.test])
    if kind == "regression":
        pred = pred * fold.scale + fold.mean
        return pred, regression_scores(fold.y_test, pred, fold.mean, fold.scale), probe.selected
    return pred, classification_scores(fold.y_test, pred, fold.seen), probe.selected


def _rows(task: str, encoder: str, probe: str, split: str, kind: str, fits: list[_FitResult], note: str) -> list[dict]:
    """One row per metric: mean and sample std over ``fits`` (the scored seeds)."""
    rows = []
    n_train, n_test = [r.n_train for r in fits], [r.n_test for r in fits]
    n_seen = [r.n_test_seen for r in fits]
    for metric in metric_names(kind):
        values = np.array([r.scores[metric] for r in fits], dtype=np.float64)
        values = values[np.isfinite(values)]
        rows.append({
            "task": task, "encoder": encoder, "probe": probe, "split": split, "metric": metric,
            "mean": float(values.mean()) if len(values) else np.nan,
            # sample standard deviation over seeds (and runs; NaN for a single one)
            "std": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
            "n_seeds": len(values),
            "n_pretrain_runs": len({r.run for r in fits}),
            "n_train": int(round(np.mean(n_train))) if n_train else 0,
            "n_test": int(round(np.mean(n_test))) if n_test else 0,
            "n_test_seen": int(round(np.mean(n_seen))) if n_seen and kind == "classification" else np.nan,
            "note": note,
        })
    return rows


def _missing_rows(task: str, encoder: str, kind: str, cfg: EvaluateConfig, note: str) -> list[dict]:
    return [row for probe in cfg.probes for split in cfg.split_names()
            for row in _rows(task, encoder, probe, split, kind, [], note)]


def run_task(task: str, table: pd.DataFrame, embeddings: Mapping[str, np.ndarray | Sequence[np.ndarray] | None],
             cfg: EvaluateConfig, unavailable: Mapping[str, str] | None = None,
             kind: str | None = None, keep_predictions: bool = True) -> TaskEvaluation:
    """Evaluate every encoder of ``embeddings`` on ``task`` (see module docstring).

    ``table``: the task's label table (``lon, lat, target, continent``), row-aligned with every
    (n, d) embedding; a list of (n, d) embeddings holds one per pretraining run (seed i fits run
    ``i % len``). ``unavailable`` maps encoder names to the reason they are missing (an
    encoder whose embedding is None without a reason is reported as unavailable too).
    ``kind`` overrides the task kind from ``TASKS``. Predictions are kept for ``cfg.seeds[0]``.
    """
    kind = kind or task_kind(task, table)
    unavailable = dict(unavailable or {})
    encoders = list(embeddings) + [e for e in unavailable if e not in embeddings]
    try:
        check_table(task, table, cfg)
    except EvaluationError as err:
        if len(table) or any(c not in table.columns for c in ("lon", "lat", "target")):
            raise
        log.warning("%s", err)  # an empty table: every encoder gets NaN rows saying so
        rows = [r for enc in encoders for r in _missing_rows(task, enc, kind, cfg, str(err))]
        return TaskEvaluation(_frame(rows, RESULT_COLUMNS), _frame([], PREDICTION_COLUMNS),
                              _frame([], TIMING_COLUMNS))
    return _run(task, table, embeddings, cfg, unavailable, kind, encoders, keep_predictions)


def _run(task: str, table: pd.DataFrame, embeddings: Mapping[str, np.ndarray | Sequence[np.ndarray] | None],
         cfg: EvaluateConfig, unavailable: dict[str, str], kind: str, encoders: list[str],
         keep_predictions: bool) -> TaskEvaluation:
    rows: list[dict] = []
    table = table.reset_index(drop=True)
    n_rows = len(table)
    keep = usable_rows(table)
    if not keep.all():
        log.warning("task %s: %d rows without a target or valid lon/lat are left out",
                    task, int((~keep).sum()))
    original_row = np.flatnonzero(keep)  # (n_kept,) row of the input table
    table = table[keep].reset_index(drop=True)
    folds = _folds(table, cfg, kind)
    jobs: dict[str, list[tuple]] = {}  # encoder -> arguments of its (encoder, seed) jobs
    for enc in encoders:
        emb = embeddings.get(enc)
        if emb is None or enc in unavailable:
            reason = unavailable.get(enc, "no embeddings")
            log.warning("task %s: encoder %s unavailable (%s)", task, enc, reason)
            rows += _missing_rows(task, enc, kind, cfg, f"unavailable: {reason}")
            continue
        runs = list(emb) if isinstance(emb, (list, tuple)) else [emb]
        try:
            xs = []
            for r, one in enumerate(runs):
                name = enc if len(runs) == 1 else f"{enc} (run {r})"
                if np.shape(one)[:1] != (n_rows,):
                    raise EvaluationError(f"task {task}, encoder {name}: embeddings have shape "
                                          f"{np.shape(one)} but the label table has {n_rows} rows")
                xs.append(check_embeddings(task, table, name, np.asarray(one)[keep]))
            if not xs:
                raise EvaluationError(f"task {task}, encoder {enc}: an empty list of embeddings")
        except EvaluationError as err:
            log.error("%s", err)
            rows += _missing_rows(task, enc, kind, cfg, str(err))
            continue
        jobs[enc] = [(task, enc, kind, xs[i % len(xs)], folds[seed], cfg, seed, i % len(xs))
                     for i, seed in enumerate(cfg.seeds)]
    fits = _run_jobs(jobs, cfg.workers)
    lon, lat = table["lon"].to_numpy(), table["lat"].to_numpy()
    preds, timings, scores = [], [], []
    for enc, results in fits.items():
        rows += _aggregate(task, enc, kind, cfg, results)
        for r in results:
            for metric, value in (r.scores or {}).items():
                scores.append({"task": task, "encoder": enc, "probe": r.probe, "split": r.split, "seed": r.seed,
                               "run": r.run, "metric": metric, "value": value})
            val_loss = (r.selected or {}).get(VAL_LOSS)
            if r.scores and isinstance(val_loss, (int, float)) and np.isfinite(val_loss):
                scores.append({"task": task, "encoder": enc, "probe": r.probe, "split": r.split, "seed": r.seed,
                               "run": r.run, "metric": VAL_LOSS, "value": float(val_loss)})
            if r.seconds is not None:
                timings.append({"encoder": enc, "probe": r.probe, "split": r.split, "seed": r.seed,
                                "seconds": r.seconds, "selected": json.dumps(r.selected, sort_keys=True)})
            if keep_predictions and r.prediction is not None and r.seed == cfg.seeds[0]:
                test = r.test
                preds.append(pd.DataFrame({
                    "encoder": enc, "probe": r.probe, "split": r.split, "seed": r.seed,
                    "row": original_row[test], "lon": lon[test], "lat": lat[test], "target": r.y_test,
                    "prediction": r.prediction}))
    return TaskEvaluation(_frame(rows, RESULT_COLUMNS),
                          pd.concat(preds, ignore_index=True) if preds else _frame([], PREDICTION_COLUMNS),
                          _frame(timings, TIMING_COLUMNS), _frame(scores, SCORE_COLUMNS))


@dataclass
class _FitResult:
    """One probe on one split for one encoder and seed (or why there is none)."""

    probe: str
    split: str
    seed: int
    run: int = 0                          # the pretraining run whose embedding was fit
    scores: dict[str, float] | None = None
    n_train: int = 0
    n_test: int = 0
    n_test_seen: int = 0                  # classification: test points of a class seen in training
    problem: str = ""
    seconds: float | None = None
    selected: dict = field(default_factory=dict)
    test: np.ndarray | None = None        # (n_test,) rows of the (filtered) table
    y_test: np.ndarray | None = None
    prediction: np.ndarray | None = None  # (n_test,) original units / labels


def _fit_seed(task: str, enc: str, kind: str, x: np.ndarray, folds: list[_Fold], cfg: EvaluateConfig,
              seed: int, run: int = 0) -> list[_FitResult]:
    """Every probe on every split of one seed for one encoder (thread counts set by the caller)."""
    out = []
    for fold in folds:
        for probe in cfg.probes:
            res = _FitResult(probe, fold.split.name, seed, run)
            out.append(res)
            if fold.problem:
                res.problem = fold.problem
                continue
            t0 = time.perf_counter()
            try:
                pred, res.scores, res.selected = _fit_predict(probe, kind, fold, x, cfg, seed)
            except ProbeSkipped as err:
                res.problem = f"skipped: {err}"
                continue
            except Exception as err:  # one failed fit must not stop the others
                log.exception("task %s, encoder %s, probe %s, split %s, seed %d failed",
                              task, enc, probe, fold.split.name, seed)
                res.problem = f"seed {seed} failed: {type(err).__name__}: {err}"
                continue
            res.seconds = time.perf_counter() - t0
            res.n_train, res.n_test = len(fold.train) + len(fold.split.val), len(fold.split.test)
            res.n_test_seen = int(fold.seen.sum()) if fold.seen is not None else res.n_test
            res.test, res.y_test, res.prediction = fold.split.test, fold.y_test, pred
    return out


def _run_jobs(jobs: dict[str, list[tuple]], workers: int) -> dict[str, list[_FitResult]]:
    """Run every (encoder, seed) job, in this thread or on ``workers`` threads.

    torch and numpy release the GIL inside their kernels, so threads fit probes in parallel
    without starting processes (which would import torch again, ~3 CPU-s each). Results do not
    depend on ``workers``: every job is seeded on its own (no global random state) and the thread
    counts are set once, before the jobs start.
    """
    flat = [(enc, args) for enc, arglist in jobs.items() for args in arglist]
    out: dict[str, list[_FitResult]] = {enc: [] for enc in jobs}
    if not flat:
        return out
    import torch
    from threadpoolctl import threadpool_limits

    cfg = flat[0][1][5]
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with threadpool_limits(limits=cfg.threads, user_api="blas"):
            total, done = len(flat), itertools.count(1)  # next() is atomic under the GIL
            if workers <= 1 or len(flat) == 1:
                results = [_timed(args, total, done) for _, args in flat]
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="satclip-eval") as pool:
                    results = list(pool.map(lambda a: _timed(a, total, done), [args for _, args in flat]))
    finally:
        torch.set_num_threads(before)
    for (enc, _), res in zip(flat, results, strict=True):
        out[enc] += res
    return out


def _timed(args: tuple, total: int = 0, done: Iterator[int] | None = None) -> list[_FitResult]:
    """``_fit_seed(*args)``, then one progress line (``done`` counts the finished jobs of ``total``)."""
    t0 = time.perf_counter()
    res = _fit_seed(*args)
    fits = sum(r.scores is not None for r in res)
    log.info("%s: encoder %s, seed %d: %d fits in %.1f s%s", args[0], args[1], args[6], fits,
             time.perf_counter() - t0, f" ({next(done)} of {total} jobs)" if done is not None else "")
    return res


def _aggregate(task: str, enc: str, kind: str, cfg: EvaluateConfig, results: list[_FitResult]) -> list[dict]:
    """Rows of one encoder: every probe x split, mean and std over seeds, notes of what is missing."""
    rows = []
    for probe in cfg.probes:
        for split in cfg.split_names():
            mine = [r for r in results if r.probe == probe and r.split == split]
            ok = [r for r in mine if r.scores is not None]
            notes = [r.problem for r in mine if r.problem]
            if ok and kind == "classification" and ok[0].n_test_seen < ok[0].n_test:
                share = ok[0].n_test_seen / ok[0].n_test
                notes.append(f"{ok[0].n_test_seen:,} of {ok[0].n_test:,} test points ({share:.0%}) have a "
                             f"class that occurs in training (accuracy_seen is over those)")
            note = "; ".join(dict.fromkeys(notes))  # unique, in order
            rows += _rows(task, enc, probe, split, kind, ok, note)
    return rows


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def evaluate_task(task: str, table: pd.DataFrame, embeddings: Mapping[str, np.ndarray | None],
                  cfg: EvaluateConfig, unavailable: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Tidy results of ``task``: ``RESULT_COLUMNS``, mean and std over ``cfg.seeds``.

    One row per encoder x probe x split x metric (R^2, MSE in standardized units, MAE in
    original units for regression; accuracy and macro-F1 for classification). Missing or failed
    combinations have a NaN mean and a ``note``. An empty label table gives NaN rows for every
    encoder; a table without ``lon, lat, target`` raises ``EvaluationError``.
    """
    return run_task(task, table, embeddings, cfg, unavailable, keep_predictions=False).results


def predictions_for_map(task: str, table: pd.DataFrame, embedding: np.ndarray, cfg: EvaluateConfig,
                        encoder: str = "satclip", probe: str = "mlp", split: str = "checkerboard",
                        seed: int | None = None) -> pd.DataFrame:
    """Test predictions of one encoder x probe x split fit (for a residual or error map).

    Returns ``lon, lat, target, prediction`` plus ``residual`` (prediction - target) for
    regression or ``correct`` for classification, one row per test point.
    """
    seed = cfg.seeds[0] if seed is None else seed
    kind = task_kind(task, table)
    check_table(task, table, cfg)
    table = table.reset_index(drop=True)
    if np.shape(embedding)[:1] != (len(table),):
        raise EvaluationError(f"task {task}, encoder {encoder}: embeddings have shape "
                              f"{np.shape(embedding)} but the label table has {len(table)} rows")
    keep = usable_rows(table)
    original_row = np.flatnonzero(keep)
    table = table[keep].reset_index(drop=True)
    x = check_embeddings(task, table, encoder, np.asarray(embedding)[keep])
    target = table["target"].to_numpy()
    if kind == "classification":
        target = np.asarray(table["target"].astype(str).to_numpy(), dtype=object)
    splits = {s.name: s for s in make_splits(table, cfg, seed)}
    if split not in splits:
        raise EvaluationError(f"task {task}: split {split!r} is not configured ({', '.join(splits)})")
    fold = _fold(splits[split], target, kind, cfg.min_class_count)
    if fold.problem:
        raise EvaluationError(f"task {task}, split {split}: {fold.problem}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=cfg.threads, user_api="blas"):
        pred, _, _ = _fit_predict(probe, kind, fold, x, cfg, seed)
    test = fold.split.test
    out = pd.DataFrame({"row": original_row[test], "lon": table["lon"].to_numpy()[test],
                        "lat": table["lat"].to_numpy()[test], "target": fold.y_test, "prediction": pred})
    if kind == "regression":
        out["residual"] = out["prediction"] - out["target"]
    else:
        out["correct"] = out["prediction"] == out["target"]
    return out
