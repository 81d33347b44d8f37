"""The evaluate stage's cost: seconds per probe fit per task kind, and the XGBoost speed-up.

Writes ``results/bench/evaluate.json``. Run ``python benchmarks/bench_evaluate.py [--quick]``
(``make bench`` runs every benchmark). Data are synthetic, shaped like the default run's tasks:
``n`` training points of a 256-d embedding with a smooth low-rank structure (like the pretrained
embedding), regression, 14 classes (biomes) and ``--classes`` classes (ecoregions has ~640).
Every probe is configured from params.yaml's ``evaluate`` section, one thread each.

The XGBoost rows compare one boosting round on the raw 256-d embedding with one on its top
``evaluate.xgboost.pca_components`` principal components, measured in the same run (compare the
ratio, not the seconds: the machines are shared).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from satclip.config import load_params
from satclip.evaluation.probes import make_probe

OUT = Path("results/bench/evaluate.json")


def synthetic(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points on the sphere, a (n, d) embedding of rank ~12 plus noise, a smooth target and class labels."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-0.9, 0.95, n)))
    freq = rng.normal(size=(3, 12))
    xyz = np.stack([np.cos(np.radians(lat)) * np.cos(np.radians(lon)),
                    np.cos(np.radians(lat)) * np.sin(np.radians(lon)), np.sin(np.radians(lat))], 1)
    base = np.sin(2.0 * xyz @ freq)                                       # (n, 12)
    x = base @ rng.normal(size=(12, d)) + 0.05 * rng.normal(size=(n, d))  # (n, d)
    y = base[:, 0] + 0.5 * base[:, 1]
    cells = np.floor((lon + 180) / 360 * 40).astype(int) * 40 + np.floor((lat + 90) / 180 * 40).astype(int)
    labels = np.unique(cells, return_inverse=True)[1] % classes            # (n,) spatial classes
    return x.astype(np.float32), y, labels


def time_fit(probe_name: str, kind: str, cfg, x, y, n_val: int) -> tuple[float, dict]:
    """Seconds of one fit (validation: the last ``n_val`` points) and what it selected."""
    probe = make_probe(probe_name, kind, cfg, seed=0)
    t0 = time.perf_counter()
    probe.fit(x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:])
    return time.perf_counter() - t0, probe.selected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and classes")
    parser.add_argument("--classes", type=int, default=640)
    args = parser.parse_args()
    cfg = load_params("params.yaml").evaluate
    n = 3000 if args.quick else 9750  # ~ the training + validation points of a random split
    classes = 100 if args.quick else args.classes
    x, y, labels = synthetic(n, 256, classes)
    n_val = n // 10
    kinds = {"regression": y, "classification (14 classes)": labels % 14,
             f"classification ({classes} classes)": labels}
    fits = []
    for kind_name, target in kinds.items():
        kind = "regression" if kind_name == "regression" else "classification"
        for probe in cfg.probes:
            seconds, selected = time_fit(probe, kind, cfg, x, target, n_val)
            fits.append({"task_kind": kind_name, "probe": probe, "seconds_per_fit": round(seconds, 3),
                         "fits_per_second": round(1.0 / seconds, 3), "selected": selected})
            print(f"{kind_name:32s} {probe:8s} {seconds:7.2f} s per fit")
    # one XGBoost round on the many-class task: raw embedding vs its principal components
    rounds = {}
    for name, pca in (("256 features", None), (f"{cfg.xgboost.pca_components} PCs", cfg.xgboost.pca_components)):
        one = replace(cfg, xgboost=replace(cfg.xgboost, pca_components=pca, n_estimators_classification=3,
                                           early_stopping_rounds=100))
        seconds, _ = time_fit("xgboost", "classification", one, x, labels, n_val)
        rounds[name] = seconds / 3
        print(f"xgboost, {classes} classes, {name}: {seconds / 3:.2f} s per round")
    names = list(rounds)
    out = {
        "machine": platform.platform(), "points": n, "dim": 256, "threads": cfg.threads,
        "fits": fits,
        "xgboost_seconds_per_round": {k: round(v, 3) for k, v in rounds.items()},
        "xgboost_pca_speedup": round(rounds[names[0]] / rounds[names[1]], 2),
        "xgboost_rounds_classification": cfg.xgboost.n_estimators_classification,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
