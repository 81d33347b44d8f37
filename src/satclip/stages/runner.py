"""Run a pipeline stage: validate ``params.yaml``, execute the stage's notebook, render its report.

Every ``dvc.yaml`` stage is one line, ``python -m satclip.stages.runner <stage> [--task T]``:

1. the whole of ``params.yaml`` is validated first (unknown keys, wrong types, bad values: the
   message names the key, the exit status is 1, nothing is written);
2. papermill executes ``notebooks/<stem>.ipynb`` with every section of ``params.yaml`` (and
   ``task``) as parameters into ``Layout.report(stage)``;
3. the executed notebook is rendered to HTML beside it (``reporting.export``: code hidden,
   nothing remote), written atomically.

While the notebook runs, what the stage logs (one line per pretraining epoch, per encoder
extracted, per probe fit; Python warnings) goes to ``Layout.logs / <report>.log`` and is echoed
to stderr (``satclip.runlog``), not into the report.

``run_function`` is the same for the ``python -m satclip.stages.<stage>`` entry points, which run
a stage's function without its notebook (e.g. pretraining under ``torchrun``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from satclip.config import ConfigError, Params, load_params, read_yaml
from satclip.io import write_text
from satclip.paths import STAGE_NOTEBOOKS, Layout, notebook_template

# jupyter_client interrupts the kernel before it shuts it down, and ipykernel logs "KeyboardInterrupt
# caught in kernel" to the console for it: the kernel application's own log is quiet (a failing
# cell is still reported by papermill, with its traceback, and the stage fails).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def execute_stage(stage: str, params_file: str | Path = "params.yaml", task: str | None = None) -> Path:
    """Validate ``params_file``, execute the stage notebook and render it; return the HTML report."""
    import os

    import papermill

    from satclip.reporting.export import render_report
    from satclip.runlog import ENV, follow

    params = load_params(params_file)
    if (task is None) != (stage != "evaluate"):
        raise ConfigError(f"stage {stage!r}: " + ("needs --task" if task is None else "takes no --task"))
    if task is not None and task not in params.download.labels.tasks:
        raise ConfigError(f"task {task!r} is not in download.labels.tasks {params.download.labels.tasks}")
    out = Layout.of(params).report(stage, task)
    out.parent.mkdir(parents=True, exist_ok=True)
    parameters: dict[str, Any] = read_yaml(params_file)
    if task is not None:
        parameters["task"] = task
    log_file = Layout.of(params).logs / f"{out.stem}.log"
    os.environ[ENV] = str(log_file.resolve())  # the kernel (and its children) log there
    try:
        with follow(log_file, out.stem):
            papermill.execute_notebook(str(notebook_template(stage)), str(out), parameters=parameters,
                                       kernel_name="python3", cwd=".", progress_bar=False, log_output=False,
                                       extra_arguments=KERNEL_ARGUMENTS)
    finally:
        os.environ.pop(ENV, None)
    return write_text(out.with_suffix(".html"), render_report(out))


def run_function(function: Callable[[Params], Any], argv: list[str] | None = None) -> int:
    """``function(load_params(argv[0] or "params.yaml"))``; print its result; 1 on a params error."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        params = load_params(args[0] if args else "params.yaml")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    result = function(params)
    if isinstance(result, dict) and result:
        print(json.dumps(result, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The runner's command line (also ``satclip stage``)."""
    parser = argparse.ArgumentParser(
        prog="python -m satclip.stages.runner",
        description="Validate params.yaml, execute one stage's notebook with papermill and render its HTML report.")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runner's arguments, for its own parser and for ``satclip stage``."""
    parser.add_argument("stage", choices=list(STAGE_NOTEBOOKS), help="the stage to run")
    parser.add_argument("--task", default=None, help="the task (evaluate only)")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the stage named by parsed arguments; return the exit status."""
    try:
        report = execute_stage(args.stage, args.params, args.task)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.stage}: report {report}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m satclip.stages.runner``."""
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
