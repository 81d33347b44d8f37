"""A stage notebook opened by hand (in Jupyter, without papermill): params.yaml, a scratch folder.

Papermill injects every section of ``params.yaml`` into a stage notebook; opened by hand, its
parameters cell holds empty sections, and the schema defaults (which differ from params.yaml)
would apply and the notebook would write into DVC's outputs. ``hand_params(stage)`` instead

- finds the project root (the folder with ``dvc.yaml`` and ``params.yaml``) and works from it;
- reads ``params.yaml`` there;
- points ``paths.data`` and ``paths.results`` at ``scratch/<stage>/data`` and ``.../results``,
  where every input of the stage (its ``dvc.yaml`` deps under the two roots) is a symlink to the
  real file, so the notebook reads the pipeline's inputs and writes only into ``scratch/``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import yaml

SCRATCH = "scratch"


class HandRunError(RuntimeError):
    """A stage notebook opened by hand cannot find its project or its inputs."""


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``dvc.yaml`` and ``params.yaml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    raise HandRunError(f"no dvc.yaml and params.yaml in {here} or above: open the notebook inside the project")


def stage_inputs(root: Path, stage: str, data: str, results: str, task: str | None = None) -> list[str]:
    """The stage's ``dvc.yaml`` deps below the data or results root, as paths relative to ``root``."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    spec = stages[stage]
    spec = spec.get("do", spec)
    out = []
    for dep in spec.get("deps", []):
        path = str(dep).replace("${paths.data}", data).replace("${paths.results}", results)
        if task is not None:
            path = path.replace("${item}", task)
        if path.startswith((f"{data}/", f"{results}/")) and "${" not in path:
            out.append(path)
    return out


def notebook_params(namespace: dict, stage: str):
    """The ``Params`` of a stage notebook: papermill's injected sections, or params.yaml by hand.

    Under the stage runner (sections injected), logs and Python warnings go to the run log
    (``satclip.runlog``), not into the report. Opened by hand (every section empty), the notebook
    works in ``scratch/<stage>`` (``hand_params``).
    """
    import dataclasses

    from satclip.config import Params, params_from_namespace
    from satclip.runlog import to_run_log

    sections = {f.name: namespace.get(f.name) for f in dataclasses.fields(Params)}
    if not any(v for k, v in sections.items() if k != "seed"):
        return hand_params(stage, namespace.get("task"))
    to_run_log()
    return params_from_namespace(namespace)


def hand_params(stage: str, task: str | None = None):
    """``Params`` of params.yaml with both roots in ``scratch/<stage>`` and the stage's inputs linked there."""
    from satclip.config import load_params

    root = project_root()
    os.chdir(root)
    params = load_params(root / "params.yaml")
    data, results = params.paths.data, params.paths.results
    scratch = Path(SCRATCH) / (stage if task is None else f"{stage}_{task}")
    for rel in stage_inputs(root, stage, data, results, task):
        source = root / rel
        top, rest = rel.split("/", 1)
        link = scratch / ("data" if top == data else "results") / rest
        if not source.exists():
            raise HandRunError(f"{rel} is missing: run the stages before {stage} first (make repro)")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(source.resolve(), target_is_directory=source.is_dir())
    paths = replace(params.paths, data=str(scratch / "data"), results=str(scratch / "results"))
    print(f"Opened by hand: parameters from {root / 'params.yaml'}; inputs linked and outputs written "
          f"under {root / scratch} (never into DVC's outputs).")
    return replace(params, paths=paths)
