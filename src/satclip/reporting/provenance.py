"""Provenance of a run: the git commit, package versions, machine and stage wall times."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

# Packages whose versions decide the numbers; listed in the generated README.
# "a|b": the first of these distributions that is installed (xgboost ships as xgboost-cpu here).
PACKAGES = ("satclip", "torch", "torchvision", "torchgeo", "lightning", "numpy", "pandas", "scikit-learn",
            "xgboost|xgboost-cpu", "dvc", "papermill")


def git_commit(root: str | Path = ".") -> str:
    """``HEAD``'s short hash, ``+dirty`` when tracked source files differ from it; ``unknown`` outside git.

    ``dvc.lock`` and ``results/`` (tracked metrics) are left out: the run being reported rewrites them.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!dvc.lock", ":!results"], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``not installed`` when absent), Python first."""
    out = {"python": platform.python_version()}
    for spec in packages:
        names = spec.split("|")
        out[names[0]] = "not installed"
        for name in names:
            try:
                out[names[0]] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def stage_times(results_dir: str | Path) -> dict[str, float]:
    """Wall seconds of each executed stage notebook (papermill's own record), by notebook stem."""
    out = {}
    for path in sorted(Path(results_dir, "notebooks").glob("*.ipynb")):
        try:
            duration = json.loads(path.read_text())["metadata"]["papermill"]["duration"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if duration is not None:
            out[path.stem] = round(float(duration), 1)
    return out


def machine() -> str:
    """One line on the machine: architecture, OS and Python."""
    return f"{platform.machine()}, {platform.system()}, Python {sys.version.split()[0]}"


def train_seconds(history_csv: str | Path) -> float:
    """Wall seconds of the pretraining run, summed over the epochs of its ``history.csv`` (NaN if absent).

    The sum is right across resumes: an epoch that ran again replaced its row.
    """
    import pandas as pd

    path = Path(history_csv)
    if not path.is_file():
        return float("nan")
    return float(pd.read_csv(path)["epoch_seconds"].sum())
