"""The generated blocks of the repository's README: the last run's results and what it cost.

``make repro`` ends with ``python -m satclip.reporting.readme README.md``, which rewrites two
blocks between markers:

- ``results``: the verdict and the main table, rendered from the git-tracked metrics
  (``results/metrics/pretrain.json``, ``results/metrics/downstream.json``) alone, so a test can
  check that the committed README says what the committed metrics say;
- ``cost``: wall time of each stage notebook and disk use of the last run on this machine (not
  tracked anywhere else: timings stay out of the tracked metrics).

``--check`` exits 1 when the results block differs from what the metrics give.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

from satclip.evaluation.metrics import primary_metric
from satclip.evaluation.tables import VALIDATION_MARGIN, VALIDATION_VERDICT, VERDICT_KEYS
from satclip.evaluation.verdict import counts_sentence, margin_sentence
from satclip.io import write_text
from satclip.paths import STAGE_NOTEBOOKS, Layout

BLOCKS = ("results", "cost", "sweeps")
ENCODERS = ("satclip", "satclip-random", "sh", "wrap", "raw", "geoclip")
BASELINES = ("satclip-random", "raw")
LABEL = {"r2": "R²", "accuracy": "accuracy", "accuracy_seen": "accuracy, seen classes"}


def _markers(name: str) -> tuple[str, str]:
    return (f"<!-- begin generated: {name} (python -m satclip.reporting.readme; do not edit) -->",
            f"<!-- end generated: {name} -->")


def _primary(leaf: dict, split: str) -> str:
    return primary_metric("regression" if "r2" in leaf else "classification", split)


def _counts(c: dict) -> str:
    return f"{c['win']} wins, {c['tie']} ties, {c['loss']} losses" + (f", {c['n/a']} n/a" if c["n/a"] else "")


def _verdict_lines(verdict: dict) -> list[str]:
    lines = []
    mlp = verdict.get("mlp", {})
    order = sorted(mlp, key=lambda s: (not s.startswith("continent"), s))
    for split in order:
        leaf = mlp[split]
        against = "; ".join(f"against {b} {_counts(leaf[f'vs {b}'])}" for b in BASELINES if f"vs {b}" in leaf)
        lines.append(f"- MLP probe, {split} split: `satclip` beats both baselines beyond the paired 95 % "
                     f"interval on **{leaf['beats_all']} of {leaf['tasks']}** tasks ({against}).")
    for probe in (p for p in verdict if p != "mlp"):
        parts = [f"{split} {leaf['beats_all']}/{leaf['tasks']}" for split, leaf in verdict[probe].items()]
        lines.append(f"- {probe} probe, tasks where `satclip` beats both: " + ", ".join(parts) + ".")
    return lines


def _goal(verdict: dict) -> str:
    mlp = verdict.get("mlp", {})
    board = mlp.get("checkerboard")
    holdouts = [s for s in mlp if s.startswith("continent:")]
    if board is None or not holdouts:
        return "The goal (MLP probe) is not checked: the checkerboard or continent split is not configured."
    holds = board["beats_all"] >= 4
    return (f"The goal we steer by (MLP probe: `satclip` beats both baselines on at least 4 of 7 "
            f"checkerboard tasks, and on biomes on both held-out continents) "
            f"{'holds on the checkerboard count' if holds else '**does not hold**'}: "
            f"{board['beats_all']} of {board['tasks']} checkerboard tasks; biomes per continent in "
            "`results/tables/verdict.md`.")


def _main_table(downstream: dict, probe: str, split: str) -> list[str]:
    rows = []
    for task, per_encoder in downstream.items():
        if task in VERDICT_KEYS:
            continue
        cells, metric = [], None
        for enc in ENCODERS:
            leaf = per_encoder.get(enc, {}).get(probe, {}).get(split)
            if leaf is None:
                cells.append("")
                continue
            metric = metric or _primary(leaf, split)
            value = leaf.get(metric)
            cells.append("n/a" if value is None else f"{value:.3f}")
        if metric is None:
            continue
        values = [float(c) for c in cells if c not in ("", "n/a")]
        best = f"{max(values):.3f}" if values else None
        cells = [f"**{c}**" if c == best else c for c in cells]
        rows.append(f"| {task} ({LABEL.get(metric, metric)}) | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["| task | " + " | ".join(ENCODERS) + " |", "|---|" + "---:|" * len(ENCODERS), *rows]


def render_results(metrics_dir: str | Path) -> str:
    """The results block from ``metrics_dir`` (``pretrain.json``, ``downstream.json``)."""
    metrics_dir = Path(metrics_dir)
    pretrain = json.loads((metrics_dir / "pretrain.json").read_text())
    downstream = json.loads((metrics_dir / "downstream.json").read_text())
    runs = int(pretrain.get("runs", 1))
    std = pretrain.get("std") or {}

    def pm(key: str, scale: float, digits: int) -> str:
        text = f"{scale * pretrain[key]:,.{digits}f}"
        return text + (f" ± {scale * std[key]:,.{digits}f}" if std.get(key) is not None else "")

    lines = [f"Last run: {runs} pretraining run{'s' if runs > 1 else ''} of {pretrain['epochs']} epochs on "
             f"{pretrain['train_pairs']:,} pairs; validation within-batch top-1 {pm('val_top1', 100, 1)} % "
             f"(chance {100 * pretrain['chance_top1']:.2f} %), median error {pm('val_median_km', 1, 0)} km"
             + (" (mean ± std over runs)" if runs > 1 else "") + ".", ""]
    verdict = downstream.get("verdict", {})
    if verdict:
        lines += ["**Verdict** (seed i of `satclip` fits pretraining run i; differences to each baseline "
                  "paired by seed, 95 % Student-t interval; `results/tables/verdict.md`):", ""]
        lines += _verdict_lines(verdict) + ["", _goal(verdict), ""]
    validation = downstream.get(VALIDATION_VERDICT)
    if validation:
        lines += [counts_sentence(validation) + " (The sweeps choose their defaults by this count, never by "
                  "the test verdict above.)", ""]
    margins = downstream.get(VALIDATION_MARGIN)
    if margins:
        lines += [margin_sentence(margins) + " (Where the counts tie, the sweeps rank their points by this.)", ""]
    for split in ("checkerboard", "continent:Africa", "continent:Asia"):
        table = _main_table(downstream, "mlp", split)
        if table:
            lines += [f"MLP probe, {split} split (mean over seeds and runs; ± and every other probe and "
                      "split in `results/tables/downstream.md`; best per row in bold):", "", *table, ""]
    return "\n".join(lines).rstrip() + "\n"


def _du(path: Path) -> str:
    if not path.exists():
        return "0"
    out = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True, check=False).stdout
    return out.split("\t", 1)[0] or "?"


def _training_minutes(history: Path) -> tuple[int, float] | None:
    """(runs, minutes) of the pretraining runs in ``history``: the longest run's epoch times added up."""
    if not history.is_file():
        return None
    import pandas as pd

    h = pd.read_csv(history)
    if "epoch_seconds" not in h or h.empty:
        return None
    per_run = (h if "run" in h else h.assign(run=0)).groupby("run")["epoch_seconds"].sum()
    return len(per_run), float(per_run.max()) / 60


def render_cost(results_dir: str | Path, data_dir: str | Path, cache_dir: str | Path = ".dvc/cache") -> str:
    """The cost block: wall time of each stage notebook of the last run, and disk use.

    When that run reused finished pretraining runs (its pretrain notebook took less time than their
    recorded training), the block says so and gives the training time from the history, so the
    block never passes a re-run's minutes off as the cost of a run from scratch.
    """
    from satclip.reporting.provenance import stage_times

    times = stage_times(Path(results_dir))
    if not times:
        return "No stage has run on this machine yet.\n"
    total = sum(times.values())
    slow = sorted(times.items(), key=lambda kv: -kv[1])[:4]
    cores = os.cpu_count()
    reused = ""
    history = Layout(data=Path(data_dir), results=Path(results_dir)).history
    trained = _training_minutes(history)
    pretrain = times.get(STAGE_NOTEBOOKS["pretrain"])
    if trained and pretrain is not None and pretrain / 60 < trained[1]:
        runs, minutes = trained
        reused = (f"; it reused {runs} finished pretraining run{'s' if runs > 1 else ''} of the same configuration, "
                  f"whose training took {minutes:.0f} minutes more (the longest run's epochs in "
                  f"`{history.as_posix()}`; runs train side by side)")
    return (f"Measured on {date.today().isoformat()} on this project's {cores}-core machine: the stage "
            f"notebooks of the last `make repro` took {total / 60:.0f} minutes in all (slowest: "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in slow)
            + f"){reused}; `{data_dir}/` holds {_du(Path(data_dir))}, `{results_dir}/` {_du(Path(results_dir))}, the DVC "
            f"cache {_du(Path(cache_dir))}. Per-stage times: `results/README.md`.\n")


def render_sweeps(sweeps_dir: str | Path) -> str:
    """The sweeps block: every comparison ``make compare`` published to ``sweeps_dir`` (``<name>.md``)."""
    files = sorted(Path(sweeps_dir).glob("*.md"))
    if not files:
        return f"No sweep compared yet (`make sweep NAME=... && make compare NAME=...` publishes to `{sweeps_dir}/`).\n"
    parts = []
    for file in files:
        lines = file.read_text().strip().splitlines()
        if lines and lines[0].startswith("# "):   # "# Sweep x" -> a bold paragraph title
            lines[0] = f"**{lines[0][2:]}** (`{file.as_posix()}`)"
        # an image beside the table (its figure, `x.png`) is linked from the README's folder
        lines = [re.sub(r"^(!\[[^\]]*\]\()([^/)]+\))$", rf"\g<1>{file.parent.as_posix()}/\g<2>", line)
                 for line in lines]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (the markers must be there)."""
    start, end = _markers(name)
    if start not in text or end not in text:
        raise ValueError(f"README has no generated block {name!r}: add the lines\n{start}\n{end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.rstrip()}\n{end}{tail}"


def block(text: str, name: str) -> str:
    """The current body of block ``name`` in ``text``."""
    start, end = _markers(name)
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.reporting.readme [README.md] [--check]``."""
    ap = argparse.ArgumentParser(prog="python -m satclip.reporting.readme", description=__doc__.split("\n")[0])
    ap.add_argument("readme", nargs="?", default="README.md")
    ap.add_argument("--results", default="results")
    ap.add_argument("--data", default="data")
    ap.add_argument("--sweeps", default="docs/sweeps", help="published sweep comparisons (make compare)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the results block is stale")
    args = ap.parse_args(argv)
    path = Path(args.readme)
    text = path.read_text()
    results = render_results(Path(args.results) / "metrics")
    if args.check:
        if block(text, "results") != results:
            print(f"{path}: the results block differs from {args.results}/metrics; run "
                  "`python -m satclip.reporting.readme`", file=sys.stderr)
            return 1
        return 0
    text = replace_block(text, "results", results)
    text = replace_block(text, "cost", render_cost(args.results, args.data))
    if _markers("sweeps")[0] in text:   # optional block: the published sweep comparisons
        text = replace_block(text, "sweeps", render_sweeps(args.sweeps))
    write_text(path, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
