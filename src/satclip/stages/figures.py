"""The figures stage: the run's cross-task figures, the results index and its README.

Draws ``reporting.summary.draw_summary_figures`` (from results on disk; nothing is retrained)
and writes ``Layout.index_html`` and ``Layout.readme`` (``reporting.index``).
"""

from __future__ import annotations

from satclip.config import Params
from satclip.reporting.index import write_report
from satclip.reporting.summary import FigureFile, draw_summary_figures


def run_figures(params: Params, show: bool = False, pending: list[str] | None = None) -> list[FigureFile]:
    """Draw every summary figure, then write the index and README; return the figures.

    ``show`` displays each figure (in the stage notebook); ``pending`` are files the index links
    that are written after it (the figures stage's own HTML report).
    """
    written = draw_summary_figures(params, show=show)
    write_report(params, written, pending=pending or [])
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.figures [params.yaml]``: run the stage outside its notebook."""
    from satclip.stages.runner import run_function

    return run_function(run_figures, argv)


if __name__ == "__main__":
    raise SystemExit(main())
