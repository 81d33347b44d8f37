"""Sweeps: an ablation as a named set of DVC experiments, run one after another in DVC's queue.

A sweep file ``experiments/sweeps/<name>.yaml``::

    description: Legendre degree L of the spherical harmonics (the paper's L = 10 vs 40)
    x: pretrain.location.legendre_polys      # the parameter on the comparison's x axis
    overlay: experiments/tiny.yaml           # optional: applied to every point first
    points:                                  # point name -> dotted param overrides
      l10: {pretrain.location.legendre_polys: 10}
      l40: {pretrain.location.legendre_polys: 40}

``python -m satclip.sweeps.sweep NAME`` (``make sweep NAME=...``; ``--points a,b`` / ``POINTS=a,b``
runs some points only) validates every point against the params schema, removes earlier experiments of the same names, queues one ``dvc exp run`` per point
(experiment ``<sweep>-<point>``) and runs the queue. Each experiment runs in DVC's temporary copy
of the repository, into which the download cache and the results of the workspace are copied, so
stages whose inputs a point does not change are skipped there too. The workspace is not touched;
``make compare NAME=...`` (``satclip.sweeps.compare``) then tabulates the finished experiments.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from satclip.config import ConfigError, Params, from_dict, merge, read_yaml
from satclip.schema import flatten
from satclip.sweeps.overlay import hydra_value

SWEEP_DIR = Path("experiments/sweeps")
POINT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SWEEP_KEYS = {"description", "x", "overlay", "points"}
RECENT_COMMITS = 20  # how far back from HEAD `dvc exp show` looks for a sweep's experiments
NOT_COPIED = {"metrics", "compare", "bench", ".gitkeep"}  # results/ entries an experiment does not start from


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file (see the module docstring)."""

    name: str
    description: str
    x: str | None
    overlay: str | None
    points: dict[str, dict[str, Any]] = field(default_factory=dict)

    def experiment(self, point: str) -> str:
        """The DVC experiment name of ``point``."""
        return f"{self.name}-{point}"


def sweep_path(name: str, root: str | Path = ".") -> Path:
    """``experiments/sweeps/<name>.yaml`` (a path ending in .yaml is taken as is)."""
    return Path(name) if str(name).endswith((".yaml", ".yml")) else Path(root) / SWEEP_DIR / f"{name}.yaml"


def resolve_sweep(name: str, root: str | Path = ".") -> Path:
    """The sweep file of ``name``; ``ConfigError`` listing the known sweeps when there is none."""
    path = sweep_path(name, root)
    if not path.is_file():
        names = sorted(p.stem for p in (Path(root) / SWEEP_DIR).glob("*.yaml"))
        raise ConfigError(f"no sweep {name!r} ({path} is missing); sweeps: {', '.join(names) or 'none'}")
    return path


def unflatten(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def load_sweep(path: str | Path, params: str | Path = "params.yaml") -> Sweep:
    """Read and validate a sweep file: every point (over the overlay) must be valid params.

    Raises ``ConfigError`` naming the file, the point and the problem.
    """
    path = Path(path)
    data = read_yaml(path)
    unknown = sorted(set(data) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep key(s) {', '.join(unknown)} (known: {', '.join(sorted(SWEEP_KEYS))})")
    points = data.get("points")
    if not isinstance(points, dict) or not points:
        raise ConfigError(f"{path}: 'points' must map point names to param overrides")
    base = read_yaml(params)
    overlay = data.get("overlay")
    if overlay is not None:
        base = merge(base, read_yaml(overlay))
    parsed = {}
    for point, overrides in points.items():
        point = str(point)
        if not POINT_NAME.match(point):
            raise ConfigError(f"{path}: point name {point!r} must be lower-case letters, digits, '-' or '_'")
        if not isinstance(overrides, dict) or not overrides:
            raise ConfigError(f"{path}: point {point!r} must map dotted param keys to values")
        overrides = flatten(unflatten({str(k): v for k, v in overrides.items()}))
        try:
            from_dict(Params, merge(base, unflatten(overrides)), "")
            for key, value in overrides.items():
                hydra_value(key, value)
        except ConfigError as err:
            raise ConfigError(f"{path}: point {point!r}: {err}") from None
        parsed[point] = overrides
    x = data.get("x")
    if x is not None and any(x not in o for o in parsed.values()):
        raise ConfigError(f"{path}: x ({x}) must be set by every point")
    return Sweep(path.stem, str(data.get("description", "")), x, overlay, parsed)


def select_points(sweep: Sweep, names: list[str] | None) -> Sweep:
    """``sweep`` with only the points ``names`` (all when None); ``ConfigError`` for an unknown name.

    A point another sweep already ran (the default, shared by most sweeps) need not run again:
    ``make compare`` finds it by its configuration (``compare.same_configuration``).
    """
    if not names:
        return sweep
    unknown = [n for n in names if n not in sweep.points]
    if unknown:
        raise ConfigError(f"sweep {sweep.name}: no point(s) {', '.join(unknown)} "
                          f"(points: {', '.join(sweep.points)})")
    return replace(sweep, points={n: sweep.points[n] for n in sweep.points if n in names})


def set_args(sweep: Sweep, point: str) -> list[str]:
    """``-S key=value`` arguments of one point: the overlay's keys, then the point's."""
    values = flatten(read_yaml(sweep.overlay)) if sweep.overlay else {}
    values.update(sweep.points[point])
    return [arg for key, value in values.items() for arg in ("-S", f"{key}={hydra_value(key, value)}")]


def copy_paths(params: Params) -> list[str]:
    """Untracked workspace paths each experiment starts from, where they exist.

    These are the download cache, the pretraining run folder and the results (stage reports,
    tables, figures).

    ``results/metrics`` is tracked by git, so it is in the experiment's copy already (DVC cannot
    copy into an existing folder); sweep comparisons and benchmarks are not needed there.
    """
    data, results = Path(params.paths.data), Path(params.paths.results)
    for key, path in (("paths.data", data), ("paths.results", results)):
        if path.is_absolute() or ".." in path.parts:  # DVC copies `-C p` to <experiment copy>/p
            raise ConfigError(f"{key} ({path}) must be a relative path inside the repository to run a sweep")
    paths = [data / "checkpoints"]  # downloads are in the shared cache outside the repository
    if results.is_dir():
        paths += sorted(p for p in results.iterdir() if p.name not in NOT_COPIED)
    return [str(p) for p in paths if p.exists()]


def queue_commands(sweep: Sweep, params: Params, dvc: str = "dvc") -> list[list[str]]:
    """One ``dvc exp run --queue`` command per point."""
    copies = [arg for p in copy_paths(params) for arg in ("-C", p)]
    return [[dvc, "exp", "run", "--queue", "-n", sweep.experiment(point), *copies, *set_args(sweep, point)]
            for point in sweep.points]


def existing_experiments(dvc: str = "dvc", cwd: str | Path = ".") -> set[str]:
    """Names of the experiments of the current commit."""
    out = subprocess.run([dvc, "exp", "ls", "--name-only"], cwd=cwd, capture_output=True, text=True)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()} if out.returncode == 0 else set()


def failed_experiments(names: set[str], dvc: str = "dvc", cwd: str | Path = ".", since: str = "") -> list[str]:
    """Those of ``names`` with no successful experiment among the last commits' experiments.

    Successful means a timestamp >= ``since`` (ISO local time). ``--run-all`` exits 0 even when
    an experiment fails, and the workspace may have been committed to while the queue ran.
    """
    out = subprocess.run([dvc, "exp", "show", "--json", "-n", str(RECENT_COMMITS)], cwd=cwd, capture_output=True,
                         text=True)
    if out.returncode != 0:
        return sorted(names)
    ok = set()
    for baseline in json.loads(out.stdout):
        for exp in baseline.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state")
            for rev in exp.get("revs") or []:
                stamp = str((rev.get("data") or {}).get("timestamp") or "")
                if (rev.get("name") in names and not rev.get("error") and state in (None, "success")
                        and stamp >= since):
                    ok.add(rev["name"])
    return sorted(names - ok)


def run_sweep(sweep: Sweep, params: Params, dvc: str = "dvc", cwd: str | Path = ".", jobs: int = 1,
              dry_run: bool = False) -> int:
    """Queue every point and run the queue; return 0 when every experiment finished, else 1."""
    commands = queue_commands(sweep, params, dvc)
    if dry_run:
        for command in commands:
            print(" ".join(command))
        return 0
    names = {sweep.experiment(p) for p in sweep.points}
    # experiment timestamps are local, second resolution: allow for a clock tick
    since = (datetime.now() - timedelta(seconds=5)).isoformat(timespec="seconds")
    stale = sorted(existing_experiments(dvc, cwd) & names)
    if stale:  # a re-run replaces the sweep's earlier experiments of this commit
        subprocess.run([dvc, "exp", "remove", *stale], cwd=cwd, check=True)
    # queued or failed entries of an interrupted earlier run would run again (or clash): drop them
    subprocess.run([dvc, "queue", "remove", *sorted(names)], cwd=cwd, capture_output=True)
    for command in commands:
        subprocess.run(command, cwd=cwd, check=True)
    status = subprocess.run([dvc, "exp", "run", "--run-all", "-j", str(jobs)], cwd=cwd).returncode
    failed = failed_experiments(names, dvc, cwd, since)
    if failed:
        print(f"error: experiment(s) {', '.join(failed)} failed: see `dvc queue logs <name>`", file=sys.stderr)
        return 1
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.sweeps.sweep NAME [--points a,b] [--dry-run] [--jobs N]``."""
    import argparse

    from satclip.config import load_params

    parser = argparse.ArgumentParser(prog="satclip sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="sweep name (experiments/sweeps/<name>.yaml) or a sweep file")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc commands, run nothing")
    parser.add_argument("--points", help="comma-separated points to run (default: all); e.g. leave out the "
                        "default's point when another sweep ran it")
    args = parser.parse_args(argv)
    try:
        chosen = [p.strip() for p in args.points.split(",") if p.strip()] if args.points else None
        sweep = select_points(load_sweep(resolve_sweep(args.name), args.params), chosen)
        params = load_params(args.params, [sweep.overlay] if sweep.overlay else [])
        copy_paths(params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"sweep {sweep.name}: {len(sweep.points)} experiments ({', '.join(map(sweep.experiment, sweep.points))})")
    try:
        return run_sweep(sweep, params, jobs=args.jobs, dry_run=args.dry_run)
    except subprocess.CalledProcessError as err:
        print(f"error: {' '.join(map(str, err.cmd))} failed with status {err.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
