"""The extract stage: location embeddings of every task's points, for every listed encoder.

Writes ``<data>/embeddings/`` (see ``extraction.store``) and ``<results>/metrics/extract.json``
(which encoders were available, and each one's collapse diagnostics on the land grid,
``extraction.diagnostics``; throughput is shown in the report, not tracked).
"""

from __future__ import annotations

import pandas as pd
import torch

from satclip.config import Params
from satclip.extraction.diagnostics import grid_diagnostics
from satclip.extraction.store import extract_encoder, grid_points
from satclip.io import write_json
from satclip.paths import Layout


def run_extract(params: Params) -> pd.DataFrame:
    """Extract every listed encoder for every task; write metrics; return a summary table."""
    torch.set_num_threads(params.runtime.threads)
    layout = Layout.of(params)
    layout.land_grid_points.unlink(missing_ok=True)  # rewritten from GRID_STEP_DEG
    grid_points(params)  # written even when no encoder is available
    metas = [extract_encoder(name, params, params.download.labels.tasks) for name in params.extract.encoders]
    summary = pd.DataFrame([{
        "encoder": m["encoder"], "available": m["available"], "dim": m.get("embedding_dim"),
        "points": sum(m.get("rows", {}).values()), "points_per_s": m.get("points_per_s"),
        "note": m.get("reason", ""),
    } for m in metas])
    diagnostics = grid_diagnostics(params)
    write_json({m["encoder"]: {"available": m["available"], "dim": m.get("embedding_dim"),
                               **diagnostics.get(m["encoder"], {})} for m in metas},
               layout.metrics("extract"))
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.extract [params.yaml]``: run the stage outside its notebook."""
    from satclip.stages.runner import run_function

    return run_function(run_extract, argv)


if __name__ == "__main__":
    raise SystemExit(main())
