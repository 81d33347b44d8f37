"""The ``satclip`` command: one subcommand per entry of ``SUBCOMMANDS``.

``embed`` (embeddings of your points), ``check`` (validate params and overlays), ``stage`` (run
one pipeline stage, as dvc.yaml does), ``overlay``, ``sweep`` and ``compare`` (ablations),
``report`` (rebuild the results index). Each has ``--help``; the ``python -m satclip.<module>``
entry points they wrap stay as aliases.

A subcommand is a registrar ``register(subparsers) -> None`` that adds its parser and sets
``func`` (``handler(args) -> int``, the exit code) with ``set_defaults``. Other modules add theirs
with ``register_subcommand(name, registrar)`` or by extending ``SUBCOMMANDS``.

Exit codes: 0 success, 1 a runtime error (bad input, unreadable checkpoint, failed download;
one line on stderr, no traceback), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import satclip

__all__ = ["SUBCOMMANDS", "register_subcommand", "build_parser", "main"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _register_embed(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from satclip.embed import BASELINES

    parser = subparsers.add_parser(
        "embed", help="location embeddings for the points of a CSV/Parquet file",
        description="Embed the (lon, lat) points of a CSV or Parquet file and write a Parquet file with the "
                    "input columns plus emb_0 ... emb_{d-1}.",
        epilog="example: satclip embed --encoder sh:10 --input cities.csv --output out.parquet")
    parser.add_argument("--encoder", required=True, metavar="ENCODER",
                        help="checkpoint path (official or ours), official name (satclip-resnet18-l10 ... "
                             f"satclip-vit16-l40), geoclip, or a baseline ({', '.join(BASELINES)})")
    parser.add_argument("--input", required=True, metavar="POINTS",
                        help="CSV (.csv, .csv.gz, .tsv) or Parquet file with lon/longitude and lat/latitude columns")
    parser.add_argument("--output", required=True, metavar="OUT.parquet", help="Parquet file to write")
    parser.add_argument("--batch-size", type=_positive_int, default=65536, help="points per batch (default 65536)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="encoder precision (default float32; outputs are stored as float32)")
    parser.add_argument("--drop-invalid", action="store_true",
                        help="drop rows with missing, non-numeric or out-of-range coordinates instead of failing")
    parser.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    import torch

    from satclip.data.download import DownloadError
    from satclip.embed import EmbedError, embed_file
    from satclip.encoders.pretrained import CheckpointError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = embed_file(args.encoder, args.input, args.output, batch_size=args.batch_size, device=args.device,
                             dtype=args.dtype, drop_invalid=args.drop_invalid,
                             progress=False if args.no_progress else None)
    except (EmbedError, CheckpointError, DownloadError, OSError) as err:
        print(f"satclip embed: error: {err}", file=sys.stderr)
        return 1
    dropped = f", dropped {summary.rows_dropped} invalid row{'s' if summary.rows_dropped != 1 else ''}" \
        if summary.rows_dropped else ""
    print(f"wrote {summary.rows_written} embeddings of dimension {summary.embedding_dim} to {summary.output}{dropped}",
          file=sys.stderr)
    return 0


def _register_check(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from satclip.config import add_check_arguments, check_from_args

    parser = subparsers.add_parser("check", help="validate params.yaml (and overlays) against the schema",
                                   description="Check a params file and overlays: unknown or misspelled keys, "
                                               "wrong types and invalid values are errors naming the key.")
    add_check_arguments(parser)
    parser.set_defaults(func=check_from_args)


def _register_stage(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from satclip.stages.runner import add_arguments, run_from_args

    parser = subparsers.add_parser("stage", help="run one pipeline stage (validate params, notebook, report)",
                                   description="Validate params.yaml, execute the stage's notebook with papermill "
                                               "and render its HTML report (what each dvc.yaml stage runs).")
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)


#: subcommands whose arguments ``<module>.main`` parses itself (``--help`` included)
DELEGATED: dict[str, str] = {}


def _delegate(name: str, module: str, help_text: str) -> Registrar:
    """A subcommand that hands its arguments to ``<module>.main`` (which parses them, ``--help`` too)."""
    DELEGATED[name] = module

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser(name, help=help_text, add_help=False, description=help_text)
        parser.add_argument("args", nargs=argparse.REMAINDER, help=f"arguments of satclip {name} (see --help)")
        parser.set_defaults(func=lambda args: _run_module(module, name, args.args))

    return register


def _run_module(module: str, name: str, argv: list[str]) -> int:
    import importlib

    main_of = importlib.import_module(module).main
    try:
        return int(main_of(argv) or 0)
    except SystemExit as exit_:  # argparse's --help and usage errors
        return int(exit_.code or 0)


#: subcommand name -> registrar
SUBCOMMANDS: dict[str, Registrar] = {
    "embed": _register_embed,
    "check": _register_check,
    "stage": _register_stage,
    "overlay": _delegate("overlay", "satclip.sweeps.overlay", "print or apply an overlay of params.yaml"),
    "sweep": _delegate("sweep", "satclip.sweeps.sweep", "run an ablation sweep as DVC experiments"),
    "compare": _delegate("compare", "satclip.sweeps.compare", "tabulate and chart a finished sweep"),
    "exp": _delegate("exp", "satclip.sweeps.exp_table", "the experiments' headline metrics (dvc exp show, cut to fit)"),
    "report": _delegate("report", "satclip.reporting.index", "rebuild results/index.html and README.md from disk"),
}


def register_subcommand(name: str, registrar: Registrar) -> None:
    """Add (or replace) a subcommand of ``satclip``."""
    SUBCOMMANDS[name] = registrar


def build_parser() -> argparse.ArgumentParser:
    """The ``satclip`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="satclip", description="SatCLIP location embeddings and experiments.")
    parser.add_argument("--version", action="version", version=f"satclip {satclip.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for registrar in SUBCOMMANDS.values():
        registrar(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``satclip`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:  # argparse would eat a leading --help of the module's own parser
        return _run_module(DELEGATED[argv[0]], argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
