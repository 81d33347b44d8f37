"""The check stage: validate params.yaml, then write every stage's fingerprint.

A stage's fingerprint, ``Layout.fingerprint(stage)`` (``<data>/stages/<stage>.json``), holds what
its result depends on besides the data files it reads:

- ``params``: the value of every param it reads (``STAGE_PARAMS``: its sections of the validated
  params, defaults filled in, flattened to dotted keys);
- ``code``: the sha256 of its notebook and of every source file it runs
  (``satclip.stages.imports.stage_files``: the runner, its stage module, its notebook's imports,
  transitively).

In ``dvc.yaml`` each stage depends on its fingerprint instead of on its params and source files
one by one (~90 files and ~120 params before). A change re-runs exactly the stages it reaches
(what per-file deps did) and the check prints which stages and why. DVC's own ``dvc status``
sees a params edit only once the check has run (``dvc repro`` runs it first).

The check runs on every ``dvc repro`` (``always_changed``; about a second). It writes nothing
unless the whole of params.yaml is valid (a misspelled key or a wrong value exits 1 before DVC
touches any stage's outputs), and rewrites a fingerprint (atomically) only when its content
changed, so a re-check re-runs nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from satclip.config import ConfigError, Params, load_params
from satclip.io import write_text
from satclip.paths import STAGE_NOTEBOOKS, Layout, notebook_template, stage_params
from satclip.stages.imports import SRC, stage_files

# The headline params, tracked by the tables stage in dvc.yaml (`dvc exp show --param-deps`,
# `dvc params diff --deps`): the seed, the number and length of the pretraining runs, and every
# key a sweep in experiments/sweeps varies.
HEADLINE_PARAMS: tuple[str, ...] = (
    "seed",
    "pretrain.runs",
    "pretrain.trainer.epochs",
    "pretrain.trainer.batch_size",
    "pretrain.location.encoding",
    "pretrain.location.legendre_polys",
    "pretrain.location.network",
    "pretrain.image.backbone",
    "pretrain.image.cnn_widths",
    "pretrain.location.dropout",
    "pretrain.feature_cache.enabled",
    "pretrain.augment.jitter_deg",
    "pretrain.augment.jitter_mode",
    "pretrain.location.w0_initial",
    "pretrain.image.rcf_features",
    "pretrain.logit_scale_max",
    "download.bluemarble.n_points",
    "download.bluemarble.patch_px",
    "pretrain.augment.crop_px",
    "evaluate.mlp.lr",
    "evaluate.mlp.hidden",
    "evaluate.mlp.weight_decay",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage_fingerprint(params: Params, stage: str, root: str | Path = ".") -> dict[str, Any]:
    """``{"stage", "params", "code"}`` of ``stage`` (code: repository-relative path -> sha256)."""
    root = Path(root)
    notebook = root / notebook_template(stage)
    code = {notebook_template(stage).as_posix(): _sha256(notebook)}
    for path in stage_files(stage, notebook):
        code[path.relative_to(SRC.parent).as_posix()] = _sha256(path)
    return {"stage": stage, "params": stage_params(params, stage), "code": dict(sorted(code.items()))}


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (params with their values, code files)."""
    out = []
    for key in sorted(set(old.get("params", {})) | set(new["params"])):
        a, b = old.get("params", {}).get(key, "(unset)"), new["params"].get(key, "(unset)")
        if a != b:
            out.append(f"{key}: {json.dumps(a)} -> {json.dumps(b)}")
    code_old, code_new = old.get("code", {}), new["code"]
    out += [f"{path} changed" for path in sorted(set(code_old) | set(code_new)) if code_old.get(path) != code_new.get(path)]
    return out


def write_fingerprints(params_file: str | Path = "params.yaml", root: str | Path = ".") -> dict[str, list[str]]:
    """Validate ``params_file``; write each stage's fingerprint whose content changed.

    Returns ``stage -> changes`` for the stages whose fingerprint was (re)written (``["new"]`` for
    a fingerprint that did not exist). Raises ``ConfigError`` (writing nothing) on invalid params.
    """
    params = load_params(params_file)
    layout = Layout.of(params)
    fingerprints = {stage: stage_fingerprint(params, stage, root) for stage in STAGE_NOTEBOOKS}
    written: dict[str, list[str]] = {}
    for stage, fingerprint in fingerprints.items():
        path = Path(root) / layout.fingerprint(stage)
        text = json.dumps(fingerprint, indent=1, sort_keys=True) + "\n"
        try:
            old_text = path.read_text()
        except FileNotFoundError:
            old_text = None
        if old_text == text:
            continue
        try:
            old = json.loads(old_text) if old_text is not None else None
        except json.JSONDecodeError:
            old = {}
        write_text(path, text)
        written[stage] = ["new"] if old is None else (_changes(old, fingerprint) or ["rewritten"])
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.check [params.yaml]``: validate, write fingerprints; 1 on bad params."""
    parser = argparse.ArgumentParser(prog="python -m satclip.stages.check",
                                     description="Validate params.yaml and write every stage's fingerprint.")
    parser.add_argument("params", nargs="?", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        written = write_fingerprints(args.params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for stage, changes in written.items():
        shown = changes[:8] + ([f"... {len(changes) - 8} more"] if len(changes) > 8 else [])
        print(f"check: {stage} will re-run: " + "; ".join(shown), file=sys.stderr)
    if not written:
        print("check: params.yaml is valid; no stage's params or code changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
