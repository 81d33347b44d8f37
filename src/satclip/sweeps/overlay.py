"""Turn an experiment overlay into ``dvc exp run -S key=value`` arguments.

``python -m satclip.sweeps.overlay experiments/x.yaml`` prints the arguments on one line (the Makefile's
``make repro EXP=...`` passes them to ``dvc exp run``). The overlay is validated against the
schema first, so a misspelled key fails before anything runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from satclip.config import ConfigError, load_params, read_yaml
from satclip.schema import flatten


def hydra_value(key: str, value: Any) -> str:
    """A value in Hydra override syntax (what ``dvc exp run -S`` parses), without whitespace."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(key, v) for v in value) + "]"
    text = str(value)
    if any(c.isspace() for c in text) or any(c in text for c in "[]{},='\""):
        raise ConfigError(f"{key}: value {text!r} cannot be passed to dvc exp run -S "
                          f"(whitespace or special characters)")
    return text


def overlay_args(overlay: str | Path, params: str | Path = "params.yaml") -> list[str]:
    """``["-S", "a.b=1", ...]`` for every leaf key of ``overlay`` (validated against ``params``)."""
    load_params(params, [overlay])
    return [arg for key, value in flatten(read_yaml(overlay)).items()
            for arg in ("-S", f"{key}={hydra_value(key, value)}")]


def apply_overlay(overlay: str | Path, params: str | Path = "params.yaml") -> Path:
    """Merge ``overlay`` into ``params`` in place (validated first; written atomically).

    For runs outside ``dvc exp`` (CI, a scratch copy of the repository): comments in
    ``params`` are not kept.
    """
    import os

    import yaml

    from satclip.config import merge

    load_params(params, [overlay])
    merged = merge(read_yaml(params), read_yaml(overlay))
    path = Path(params)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(merged, sort_keys=False, default_flow_style=None))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Print the ``-S`` arguments of an overlay (``--apply``: merge it into params.yaml)."""
    import argparse

    parser = argparse.ArgumentParser(prog="satclip overlay",
                                     description="Print an overlay's `dvc exp run -S key=value` arguments, "
                                                 "or merge it into params.yaml (--apply).")
    parser.add_argument("overlay", help="overlay file (experiments/<name>.yaml)")
    parser.add_argument("--apply", action="store_true", help="merge the overlay into params.yaml in place")
    parser.add_argument("--run", action="store_true",
                        help="run `dvc exp run -S key=value ...` with the overlay's values (no shell: values "
                             "reach DVC exactly as written)")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.run:
            import subprocess

            return subprocess.run(["dvc", "exp", "run", *overlay_args(args.overlay, args.params)]).returncode
        if args.apply:
            apply_overlay(args.overlay, args.params)
        else:
            print(" ".join(overlay_args(args.overlay, args.params)))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
