"""One comparison table and figure across a sweep's finished experiments (``make compare NAME=...``).

Reads ``dvc exp show --json`` (the experiments of the last ``RECENT_COMMITS`` commits, so a sweep
stays comparable after a commit; the newest experiment of a name wins), keeps those named
``<sweep>-<point>``, reads each one's ``params.yaml`` and full metrics files (``downstream.json``,
``pretrain.json``: git-tracked, not declared metrics, so not in ``dvc exp show``) from its
experiment commit with ``git show``, and writes ``<results>/compare/<sweep>.csv`` (one row per experiment: the
varied params, pretraining retrieval, and every task's primary metric for one encoder, probe and
split), ``<sweep>.md`` (the same as a Markdown table) and ``<sweep>.json`` (what the figure needs:
the swept parameter, the description, the scoring protocol). The figures stage draws
``figures/summary/compare_<sweep>.png`` from them (``make compare`` runs it).

``--publish DIR`` (``make compare``: ``docs/sweeps``, git-tracked) also writes ``DIR/<sweep>.md``
with its provenance and the same figure as ``DIR/<sweep>.png``, linked from the Markdown, so a
clone shows every sweep's table and figure without its experiments. ``--redraw`` draws that
figure again from the published table alone (for a sweep whose experiments are gone).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from satclip.config import ConfigError, merge, read_yaml
from satclip.evaluation.tables import VALIDATION_MARGIN, VALIDATION_VERDICT, VERDICT, VERDICT_KEYS
from satclip.io import write_json, write_text
from satclip.schema import flatten
from satclip.sweeps.sweep import RECENT_COMMITS, Sweep, load_sweep, resolve_sweep

DOWNSTREAM = "downstream.json"
PRETRAIN = "pretrain.json"
HEADLINE = "headline.json"   # the declared metrics file: an experiment that has it has finished
PRETRAIN_COLUMNS = {"val_loss": "pretrain val loss", "val_top1": "pretrain top-1", "val_median_km": "pretrain median km"}
# The study's verdict per experiment (downstream.json "verdict"): on how many tasks `satclip` beats
# both raw coordinates and satclip-random beyond the paired 95 % interval, by probe and split.
VERDICT_COLUMNS = {("mlp", "checkerboard"): "wins mlp checkerboard", ("mlp", "continent:Asia"): "wins mlp Asia",
                   ("mlp", "continent:Africa"): "wins mlp Africa", ("xgboost", "checkerboard"): "wins xgboost checkerboard",
                   ("linear", "checkerboard"): "wins linear checkerboard"}
# The same count on the probes' validation loss (downstream.json "validation_verdict"): it uses no
# test point, so it is what a sweep's default is chosen by.
VALIDATION_COLUMNS = {("mlp", "checkerboard"): "val wins mlp checkerboard", ("mlp", "continent:Asia"): "val wins mlp Asia",
                      ("mlp", "continent:Africa"): "val wins mlp Africa"}
# How far satclip's mean probe validation loss lies below the best baseline's (geometric mean over tasks
# of the ratio; downstream.json "validation_margin"; + is better): ranks points where the counts above tie.
MARGIN_COLUMNS = {("mlp", "checkerboard"): "val margin mlp checkerboard", ("mlp", "continent:Asia"): "val margin mlp Asia",
                  ("mlp", "continent:Africa"): "val margin mlp Africa"}


def experiments_json(dvc: str = "dvc", cwd: str | Path = ".") -> list[dict]:
    """``dvc exp show --json`` parsed (raises ``RuntimeError`` with dvc's message on failure)."""
    try:
        out = subprocess.run([dvc, "exp", "show", "--json", "-n", str(RECENT_COMMITS)], cwd=cwd, capture_output=True,
                             text=True)
    except FileNotFoundError:
        raise RuntimeError(f"{dvc!r} is not on PATH (run through make, or activate .venv)") from None
    if out.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def git_file_reader(cwd: str | Path = ".") -> Callable[[str, str], str | None]:
    """``read(rev, path)``: the text of ``path`` at commit ``rev`` (``git show``), or None."""
    def read(rev: str, path: str) -> str | None:
        out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None
    return read


def finished_experiments(rows: list[dict], read: Callable[[str, str], str | None] | None = None,
                         metrics_dir: str = "results/metrics") -> dict[str, dict]:
    """Experiment name -> ``{"params": flat params, "metrics": {file name: data}}`` of the finished experiments.

    A failed, queued or running experiment is left out; of two experiments of one
    name, on different commits, the newer is kept. With ``read`` (``git_file_reader``), the params
    are the experiment's whole ``params.yaml`` and the metrics files missing from ``dvc exp show``
    are read from ``metrics_dir`` at the experiment's commit, and the newest commit of the listing
    is a candidate too, named ``<branch>@<sha>`` (its committed metrics).
    """
    out, stamps = {}, {}
    head = next((row for row in rows if row.get("rev") not in (None, "workspace")), None)
    candidates = []
    if head is not None and read is not None:
        # the newest commit itself: its git-tracked metrics are the default run's when it was
        # committed with `dvc status` clean (the README's numbers), so a sweep's default point
        # need not be run again as an experiment
        label = f"{head.get('name') or 'HEAD'}@{str(head['rev'])[:7]}"
        candidates.append(({}, {**head, "name": label}))
    for baseline in rows:
        candidates += [(exp, rev) for exp in baseline.get("experiments") or [] for rev in exp.get("revs") or []]
    for exp, rev in candidates:
        if (exp.get("executor") or {}).get("state") not in (None, "success"):
            continue   # queued or running: its metrics are the copied baseline's, not its own
        name, data = rev.get("name") or exp.get("name"), rev.get("data") or {}
        metrics = {Path(path).name: (m or {}).get("data") for path, m in (data.get("metrics") or {}).items()}
        if not name or rev.get("error") or not (metrics.get(HEADLINE) or metrics.get(DOWNSTREAM)):
            continue
        stamp = str(data.get("timestamp") or "")
        if name in out and stamps[name] >= stamp:
            continue
        params = flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
        sha = rev.get("rev") or data.get("rev")
        if read is not None and sha:
            text = read(sha, "params.yaml")
            params = flatten(yaml.safe_load(text) or {}) if text else params
            for file in (DOWNSTREAM, PRETRAIN):
                text = None if metrics.get(file) else read(sha, f"{metrics_dir}/{file}")
                if text:
                    metrics[file] = json.loads(text)
        if not metrics.get(DOWNSTREAM):
            continue
        out[name], stamps[name] = {"params": params, "metrics": metrics}, stamp
    return out


def _score(downstream: dict, task: str, encoder: str, probe: str, split: str) -> float:
    from satclip.reporting.summary import primary_metric

    try:
        value = downstream[task][encoder][probe][split][primary_metric(task)]
    except (KeyError, TypeError):
        return float("nan")
    return float("nan") if value is None else float(value)


def same_configuration(experiments: dict[str, dict], expected: dict[str, Any]) -> str | None:
    """The first finished experiment (by name) whose params hold every key of ``expected`` at its value."""
    for name in sorted(experiments):
        params = experiments[name]["params"]
        if all(key in params and params[key] == value for key, value in expected.items()):
            return name
    return None


def comparison_table(sweep: Sweep, experiments: dict[str, dict], encoder: str = "satclip", probe: str = "mlp",
                     split: str = "checkerboard", base: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per finished experiment of ``sweep``, in the sweep file's point order.

    A point is the experiment ``<sweep>-<point>``; without one, and given ``base`` (the flat
    params the points apply to), any finished experiment of the same configuration (every key of
    ``base`` and the point's overrides equal): a point two sweeps share is then run once.

    Columns: ``experiment``, ``point``, every param the points set, the pretraining metrics, the
    verdict (``VERDICT_COLUMNS``: tasks won against both baselines, e.g. ``"2/7"``), the same on
    the probes' validation loss (``VALIDATION_COLUMNS``, where the experiment has it), the
    validation margin (``MARGIN_COLUMNS``: "+2.0 %", satclip's validation loss that much below the
    best baseline's, geometric mean over tasks; where the experiment has it) and one column
    per task (primary metric of ``encoder`` with ``probe`` on ``split``).
    """
    varied = list(dict.fromkeys(k for o in sweep.points.values() for k in o))
    rows: list[dict[str, Any]] = []
    tasks: list[str] = []
    for point in sweep.points:
        name: str | None = sweep.experiment(point)
        if name not in experiments and base is not None:
            name = same_configuration(experiments, {**base, **sweep.points[point]})
        if name not in experiments:
            continue
        exp = experiments[name]
        row: dict[str, Any] = {"experiment": name, "point": point}
        row.update({k: exp["params"].get(k) for k in varied})
        pretrain = exp["metrics"].get(PRETRAIN) or {}
        row.update({label: pretrain.get(key) for key, label in PRETRAIN_COLUMNS.items()})
        downstream = exp["metrics"][DOWNSTREAM]
        for key, columns in ((VERDICT, VERDICT_COLUMNS), (VALIDATION_VERDICT, VALIDATION_COLUMNS)):
            verdict = downstream.get(key) or {}
            for (v_probe, v_split), label in columns.items():
                cell = (verdict.get(v_probe) or {}).get(v_split) or {}
                if "beats_all" in cell:
                    row[label] = f"{cell['beats_all']}/{cell.get('tasks', '?')}"
        margins = downstream.get(VALIDATION_MARGIN) or {}
        for (v_probe, v_split), label in MARGIN_COLUMNS.items():
            cell = (margins.get(v_probe) or {}).get(v_split) or {}
            if "margin" in cell:
                row[label] = f"{100 * cell['margin']:+.1f} %"
        for task in downstream:
            if task in VERDICT_KEYS:   # win / tie / loss counts: the verdict columns above
                continue
            tasks.append(task)
            row[task] = _score(downstream, task, encoder, probe, split)
        rows.append(row)
    if not rows:
        raise LookupError(f"no finished experiment of sweep {sweep.name!r} in `dvc exp show` "
                          f"(expected names {', '.join(map(sweep.experiment, sweep.points))}): run make sweep NAME={sweep.name}")
    table = pd.DataFrame(rows)
    for col in table.columns:  # list-valued params (widths) as text, so the table stays flat
        if table[col].map(lambda v: isinstance(v, list)).any():
            table[col] = table[col].map(str)
    return table


def write_comparison(sweep: Sweep, table: pd.DataFrame, out_dir: str | Path, *, encoder: str = "satclip",
                     probe: str = "mlp", split: str = "checkerboard") -> list[Path]:
    """``<sweep>.csv``, ``.md`` and ``.json`` under ``out_dir`` (each written atomically)."""
    out_dir = Path(out_dir)
    protocol = _protocol(encoder, probe, split)
    shown = table.drop(columns=["experiment"]).copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    lines = [f"# Sweep {sweep.name}", "", sweep.description, "", f"Scores: {protocol}.", "", header,
             "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in shown.itertuples(index=False)]
    meta = {"sweep": sweep.name, "description": sweep.description, "x": sweep.x, "encoder": encoder,
            "probe": probe, "split": split, "protocol": protocol}
    return [write_text(out_dir / f"{sweep.name}.md", "\n".join(lines) + "\n"),
            write_json(meta, out_dir / f"{sweep.name}.json"),
            write_text(out_dir / f"{sweep.name}.csv", table.to_csv(index=False, float_format="%.6g"))]


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.sweeps.compare NAME``: write the comparison of a finished sweep."""
    import argparse

    from satclip.config import load_params

    parser = argparse.ArgumentParser(prog="satclip compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="sweep name (experiments/sweeps/<name>.yaml) or a sweep file")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--encoder", default="satclip")
    parser.add_argument("--probe", default="mlp")
    parser.add_argument("--split", default="checkerboard")
    parser.add_argument("--publish", metavar="DIR", help="also write the table to DIR/<sweep>.md with its "
                        "provenance and its figure to DIR/<sweep>.png (make compare: docs/sweeps, a tracked "
                        "folder the README's sweeps block shows)")
    parser.add_argument("--redraw", action="store_true", help="with --publish: only draw DIR/<sweep>.png again "
                        "from the published DIR/<sweep>.md (no experiment is read)")
    args = parser.parse_args(argv)
    if args.redraw and not args.publish:
        parser.error("--redraw needs --publish DIR")
    try:
        sweep = load_sweep(resolve_sweep(args.name), args.params)
        if args.redraw:
            for path in redraw(sweep, Path(args.publish) / f"{sweep.name}.md", _protocol(args.encoder, args.probe,
                                                                                         args.split)):
                print(path)
            return 0
        params = load_params(args.params)
        found = finished_experiments(experiments_json(), git_file_reader(),
                                     Path(params.paths.results, "metrics").as_posix())
        base = flatten(merge(read_yaml(args.params), read_yaml(sweep.overlay) if sweep.overlay else {}))
        table = comparison_table(sweep, found, args.encoder, args.probe, args.split, base)
    except (ConfigError, LookupError, RuntimeError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not any(c in table.columns for c in _task_names()):
        print(f"error: the experiments of sweep {sweep.name!r} have no downstream scores", file=sys.stderr)
        return 2
    written = write_comparison(sweep, table, Path(params.paths.results) / "compare", encoder=args.encoder,
                               probe=args.probe, split=args.split)
    if args.publish:
        target = Path(args.publish) / f"{sweep.name}.md"
        figure = publish_figure(table, sweep, target.with_suffix(".png"),
                                _protocol(args.encoder, args.probe, args.split))
        written += [publish(written[0], target, list(table["experiment"]), figure_line(sweep, figure)), figure]
    for path in written:
        print(path)
    return 0


def _protocol(encoder: str, probe: str, split: str) -> str:
    return f"{encoder} embedding, {probe} probe, {split} split; primary metric (R² or accuracy), mean over seeds"


def figure_line(sweep: Sweep, figure: Path) -> str:
    """The Markdown image line of a published figure (a path relative to the published table)."""
    return f"![Sweep {sweep.name}: {sweep.description}]({figure.name})"


def publish(table_md: Path, target: Path, experiments: list[str], figure: str | None = None) -> Path:
    """Copy a comparison's Markdown to ``target`` with where it came from (date, HEAD, experiment names).

    ``figure``: the image line (``figure_line``) of the chart published beside ``target``, put under the table.
    """
    from datetime import date

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = table_md.read_text().rstrip().splitlines()
    if figure is not None:
        lines += ["", figure]
    lines += ["", f"`make compare` on {date.today().isoformat()} at commit {head or 'unknown'}, from the experiments "
              f"{', '.join(f'`{e}`' for e in dict.fromkeys(experiments))} (`dvc exp show`)."]
    return write_text(target, "\n".join(lines) + "\n")


def publish_figure(table: pd.DataFrame, sweep: Sweep, target: Path, protocol: str) -> Path:
    """Draw ``sweep``'s comparison chart of ``table`` (one row per point) to ``target`` (a PNG)."""
    import matplotlib.pyplot as plt

    from satclip.reporting import plots
    from satclip.reporting.summary import comparison_chart_of

    plots.use_style()
    meta = {"x": sweep.x, "description": sweep.description, "protocol": protocol}
    fig = comparison_chart_of(table, sweep.name, meta=meta)
    try:
        return plots.save(fig, target.with_suffix(""), formats=("png",), dpi=110)[0]
    finally:
        plt.close(fig)


def published_table(text: str) -> pd.DataFrame:
    """The first Markdown table of a published comparison, one row per point; numeric columns as floats.

    Raises ``ValueError`` when ``text`` holds no table.
    """
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(rows) < 3:
        raise ValueError("no comparison table (a header, a rule and at least one row) in the published file")
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    header, body = cells[0], cells[2:]
    table = pd.DataFrame(body, columns=header)
    for col in table.columns:
        values = table[col].where(table[col] != "n/a")   # n/a: a missing score
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum():   # every given cell is a number
            table[col] = numbers
    return table


def redraw(sweep: Sweep, published: Path, protocol: str) -> list[Path]:
    """Draw ``published``'s figure (``<sweep>.png`` beside it) from its table and link it if it is not.

    For a sweep whose experiments are gone: the published table is all that is read. Returns the
    written paths. Raises ``FileNotFoundError`` without the published table.
    """
    if not published.is_file():
        raise FileNotFoundError(f"{published}: no published comparison of sweep {sweep.name!r} "
                                "(make compare NAME=... publishes it)")
    text = published.read_text()
    figure = publish_figure(published_table(text), sweep, published.with_suffix(".png"), protocol)
    if f"]({figure.name})" in text:
        return [figure]
    lines = text.rstrip().splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("`make compare` on")), len(lines))
    lines[at:at] = [figure_line(sweep, figure), ""]
    return [figure, write_text(published, "\n".join(lines) + "\n")]


def _task_names() -> list[str]:
    from satclip.data.labels import TASKS

    return list(TASKS)


if __name__ == "__main__":
    raise SystemExit(main())
