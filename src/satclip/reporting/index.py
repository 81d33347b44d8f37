"""The run's front pages: ``<results>/index.html`` and the generated ``<results>/README.md``.

``index.html`` has one line per report, table and figure; ``README.md`` the main table plus
what produced it (params hash, git commit, package versions, wall times).

Both are rebuilt from what is on disk, so a link is only written for a file that exists.
``python -m satclip.reporting.index [params.yaml]`` rebuilds them (``make compare`` does, to list a new
comparison).
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from satclip.config import Params, params_hash
from satclip.io import write_text
from satclip.paths import Layout
from satclip.reporting.provenance import git_commit, machine, package_versions, stage_times, train_seconds

STAGE_REPORTS = {
    "10_download": "Download: data sources, checksums, the pretraining patches and every task's labels on maps.",
    "20_pretrain": "Pretraining: configuration, curves, the embedding map and image-to-location retrieval.",
    "30_extract": "Extraction: every encoder's embeddings of the task points and of a land grid.",
    "50_tables": "Tables: the joined results, the verdict (pretrained against untrained and raw) and image localization.",
    "90_figures": "Figures: the cross-task figures of this run, as listed below.",
}


@dataclass(frozen=True)
class Entry:
    """One line of the index: a path relative to the results folder and what it shows."""

    path: str
    text: str


def _describe(rel: str, known: dict[str, str]) -> str | None:
    """One line on what a results file shows, or None for files the index does not list."""
    if rel in known:
        return known[rel]
    path = Path(rel)
    stem, parts = path.stem, path.parts
    if parts[0] == "notebooks" and path.suffix == ".html":
        if stem.startswith("40_evaluate_"):
            task = stem.removeprefix("40_evaluate_")
            return f"Evaluation of {task}: labels, every encoder × probe × split, prediction maps."
        return STAGE_REPORTS.get(stem, "Stage report.")
    if parts[0] == "tables":
        if len(parts) == 3 and parts[1] == "tasks":
            if path.name.endswith(".scores.csv"):
                return (f"Every fit's scores of {path.name.removesuffix('.scores.csv')} (seed, pretraining run, "
                        "metric; the probe's validation loss as val_loss).")
            return f"Tidy results of {stem} (one row per encoder, probe, split, metric)."
        return {"downstream.csv": "All results, tidy: task, encoder, probe, split, metric, mean, std, seeds, runs.",
                "downstream.md": "The main tables in Markdown (tasks × encoders, one per probe and split).",
                "downstream.tex": "The same tables in LaTeX (booktabs).",
                "scores.csv": "Every fit's scores and validation loss, all tasks (the verdicts' input).",
                "verdict.md": "The verdict: satclip minus each baseline, paired over seeds and runs, 95 % intervals.",
                "verdict.csv": "The verdict, tidy: one row per task, probe, split and baseline."}.get(path.name)
    if parts[0] == "figures" and path.suffix == ".png":
        if len(parts) == 3 and parts[1] == "tasks":
            if stem.endswith("_map"):
                return f"{stem.removesuffix('_map')}: satclip's test-point errors on a map (stage 40)."
            return f"{stem.removesuffix('_bars')}: bars per encoder and probe (stage 40)."
        if stem == "localization_map":
            return "Image localization error of held-out pretraining images, at their true location."
        return None
    if parts[0] == "metrics" and path.suffix == ".json":
        if stem == "headline":
            return "The headline metrics: pretraining retrieval, wins per protocol, headline scores (satclip exp)."
        return f"Metrics of the {stem} stage (git-tracked; dvc metrics show reads it)."
    if parts[0] == "compare" and path.suffix in (".md", ".csv"):
        kind = "table" if path.suffix == ".md" else "table, CSV"
        return f"Comparison {kind} of the finished experiments of sweep {stem} (make compare)."
    if parts[0] == "bench" and path.suffix == ".json":
        return f"Benchmark results: {stem} (make bench)."
    if rel == "model/satclip.ckpt":
        return "The pretrained SatCLIP checkpoint, run 0 (Lightning; `satclip embed --encoder` takes it)."
    if parts[0] == "model" and stem.startswith("satclip-run"):
        return f"The checkpoint of pretraining run {stem.removeprefix('satclip-run')}."
    if rel == "plots/pretrain_history.csv":
        return "Per-epoch pretraining history (loss, retrieval accuracy, error, time)."
    return None


SECTIONS = (("Reports", "notebooks"), ("Figures", "figures"), ("Tables", "tables"), ("Comparisons", "compare"),
            ("Metrics and model", ("metrics", "model", "plots")), ("Benchmarks", "bench"))


def index_entries(results_dir: str | Path, figures: Iterable = (), pending: Iterable[str] = ()) -> dict[str, list[Entry]]:
    """What the index lists, by section: every existing file of the known kinds with its line.

    ``figures`` are ``FigureFile`` records (their descriptions win over the generic ones);
    ``pending`` are paths (relative to the results folder) listed although they do not exist
    yet: the figures stage's own HTML report, rendered right after the index is written.
    """
    root = Path(results_dir)
    known = {Path(f.png).relative_to(root).as_posix(): f.description for f in figures}
    pending = set(pending)
    out: dict[str, list[Entry]] = {}
    for title, folders in SECTIONS:
        folders = (folders,) if isinstance(folders, str) else folders
        entries = []
        for folder in folders:
            found = sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []
            found += [root / p for p in pending if p.split("/")[0] == folder and not (root / p).exists()]
            for path in sorted(found):
                rel = path.relative_to(root).as_posix()
                text = _describe(rel, known) if path.is_file() or rel in pending else None
                if text is not None:
                    entries.append(Entry(rel, text))
        if folders == ("figures",):  # the stage's own figures first, in drawing order
            order = {rel: i for i, rel in enumerate(known)}
            entries.sort(key=lambda e: (order.get(e.path, len(order)), e.path))
        if entries:
            out[title] = entries
    return out


def _provenance_rows(params: Params, results_dir: Path) -> list[tuple[str, str]]:
    versions = package_versions()
    return [("params hash", params_hash(params)), ("git commit", git_commit()),
            ("seed", str(params.seed)), ("pretraining set", params.pretrain.dataset),
            ("packages", ", ".join(f"{k} {v}" for k, v in versions.items())),
            ("machine", machine())]


def render_index(params: Params, results_dir: str | Path, figures: Iterable = (), pending: Iterable[str] = ()) -> str:
    """The index page: provenance, then one line per report, figure (with thumbnail), table, metric."""
    root = Path(results_dir)
    figures = list(figures)
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>SatCLIP experiment suite: results</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
             "color:#222}li{margin:.35em 0}code{background:#f3f3f3;padding:0 .2em}"
             "img.thumb{max-width:22em;display:block;margin:.3em 0 .8em;border:1px solid #ddd}"
             "table{border-collapse:collapse}td,th{padding:.15em .8em .15em 0;vertical-align:top}"
             ".front table{font-size:.9em;margin:.5em 0 1em}.front th,.front td{border-bottom:1px solid #ddd}"
             "img.figure{max-width:100%;border:1px solid #ddd}</style>",
             "</head><body>", "<h1>SatCLIP experiment suite: results</h1>",
             "<p>Everything below was produced by <code>make repro</code> (and <code>make figures</code>, "
             "<code>make compare</code>) from <code>params.yaml</code>. Start with the verdict and the main "
             "table below" + ('; then the <a href="notebooks/50_tables.html">tables report</a>'
                              if (root / "notebooks" / "50_tables.html").is_file() else "")
             + '; <a href="README.html">README</a> says how the run was made.</p>', *front_page(root), "<table>"]
    for key, value in _provenance_rows(params, root):
        parts.append(f"<tr><td><b>{esc(key)}</b></td><td>{esc(value)}</td></tr>")
    parts.append("</table>")
    summary_figs = {Path(f.png).relative_to(root).as_posix() for f in figures}
    for title, entries in index_entries(root, figures, pending).items():
        parts.append(f"<h2>{esc(title)}</h2><ul>")
        for e in entries:
            link = f'<a href="{esc(e.path)}">{esc(e.path)}</a>'
            pdf = root / Path(e.path).with_suffix(".pdf")
            if e.path.endswith(".png") and pdf.is_file():
                link += f' (<a href="{esc(Path(e.path).with_suffix(".pdf").as_posix())}">pdf</a>)'
            thumb = f'<img class="thumb" src="{esc(e.path)}" alt="{esc(e.text)}">' if e.path in summary_figs else ""
            parts.append(f"<li>{link}: {esc(e.text)}{thumb}</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_readme(params: Params, results_dir: str | Path) -> str:
    """The generated README of the results folder: provenance, wall times, the main (MLP) tables."""
    root = Path(results_dir)
    lines = ["# Results of this run", "",
             "Generated by the figures stage (`satclip.reporting.index`); do not edit. "
             "[index.html](index.html) links every report, table and figure.", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _provenance_rows(params, root)]
    layout = Layout(Path(params.paths.data), root)
    metrics_file = layout.metrics("pretrain")
    if metrics_file.is_file():
        m = json.loads(metrics_file.read_text())
        seconds = train_seconds(layout.history)
        runs = int(m.get("runs", 1))
        std = m.get("std") or {}

        def pm(key: str, scale: float = 1.0, digits: int = 1) -> str:
            value = f"{scale * m.get(key, float('nan')):,.{digits}f}"
            return value + (f" ± {scale * std[key]:,.{digits}f}" if std.get(key) is not None else "")

        lines += ["", "## Pretraining", "",
                  f"{runs} run{'s' if runs > 1 else ''} of {m.get('epochs')} epochs on {m.get('train_pairs'):,} "
                  f"pairs ({seconds:,.0f} s of training{' in all' if runs > 1 else ''}); validation within-batch "
                  f"top-1 {pm('val_top1', 100)} % (chance {100 * m.get('chance_top1', float('nan')):.2f} %), top-5 "
                  f"{pm('val_top5', 100)} %, median error {pm('val_median_km', digits=0)} km"
                  + (" (mean ± std over runs)." if runs > 1 else ".")]
    times = stage_times(root)
    if times:
        lines += ["", "## Wall time of each stage notebook (seconds)", "", "| notebook | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:,.1f} |" for k, v in times.items()]
        lines += [f"| total | {sum(times.values()):,.1f} |", "",
                  "A notebook that adopted a finished training run (same config hash) shows its own time, "
                  "not the training's: see the training time above."]
    tables = root / "tables" / "downstream.md"
    if tables.is_file():
        blocks = [b.strip() for b in tables.read_text().split("### ") if " probe, " in b.split("\n", 1)[0]]
        probes = [b.split(" probe", 1)[0] for b in blocks]
        probe = "mlp" if "mlp" in probes else (probes[0] if probes else "")
        lines += ["", f"## Main table: {probe} probe (R² for regression, accuracy for classification)", ""]
        for block, name in zip(blocks, probes, strict=True):
            if name == probe:
                lines += ["### " + block, ""]
        lines += ["All probes and splits: [tables/downstream.md](tables/downstream.md) "
                  "(tidy: [tables/downstream.csv](tables/downstream.csv))."]
    verdict = root / "tables" / "verdict.csv"
    if verdict.is_file():
        import pandas as pd

        from satclip.evaluation.tables import verdict_report

        text = verdict_report(pd.read_csv(verdict, keep_default_na=False, na_values=[""]), protocols_only=True)
        lines += ["", "## Verdict: does pretraining add information?", "", text.strip(), "",
                  "Every probe and split: [tables/verdict.md](tables/verdict.md) "
                  "(tidy: [tables/verdict.csv](tables/verdict.csv))."]
    return "\n".join(lines).rstrip() + "\n"


def markdown_html(text: str) -> str:
    """Markdown (with tables) as an HTML fragment."""
    import mistune

    return mistune.create_markdown(plugins=["table"])(text)


def front_page(root: Path) -> list[str]:
    """The study at a glance: the verdict, the main table, the headline figure (what exists of them)."""
    import pandas as pd

    from satclip.evaluation.tables import verdict_report

    parts = ['<div class="front">']
    verdict = root / "tables" / "verdict.csv"
    if verdict.is_file():
        v = pd.read_csv(verdict, keep_default_na=False, na_values=[""])
        parts += ["<h2>Verdict: does pretraining add information?</h2>",
                  "<p>Pretrained <code>satclip</code> minus each baseline (<code>satclip-random</code>: the same "
                  "architecture untrained; <code>raw</code>: lon, lat), paired seed by seed (seed i fits "
                  "pretraining run i), mean with a 95 % Student-t interval: win when it lies above 0. The "
                  "paper's protocol (MLP probe, held-out continents) first, then the checkerboard split.</p>",
                  markdown_html(verdict_report(v, protocols_only=True))]
    tables = root / "tables" / "downstream.md"
    if tables.is_file():
        for block in tables.read_text().split("### "):
            if block.startswith("mlp probe, checkerboard split"):
                title, body = block.split("\n", 1)
                parts += [f"<h2>Main table: {html.escape(title)}</h2>", markdown_html(body)]
    headline = root / "figures" / "summary" / "headline.png"
    if headline.is_file():
        parts.append('<p><img class="figure" src="figures/summary/headline.png" '
                     'alt="Headline tasks: every encoder and probe, random vs spatial split"></p>')
    parts.append("</div>")
    return parts if len(parts) > 2 else []


def write_report(params: Params, figures: Iterable = (), pending: Iterable[str] = ()) -> tuple[Path, Path]:
    """Write ``<results>/index.html``, ``<results>/README.md`` (and its HTML rendering); return the first two.

    ``pending``: files the index links that the caller writes next (see ``index_entries``).
    """
    root = Path(params.paths.results)
    figures = list(figures)
    index = write_text(root / "index.html", render_index(params, root, figures, pending))
    text = render_readme(params, root)
    readme = write_text(root / "README.md", text)
    write_text(root / "README.html", '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
               "<title>Results of this run</title><style>body{font-family:system-ui,sans-serif;max-width:70em;"
               "margin:2em auto;padding:0 1em}table{border-collapse:collapse;font-size:.9em}td,th{padding:.15em "
               ".6em;border-bottom:1px solid #ddd}</style></head><body>" + markdown_html(text) + "</body></html>\n")
    return index, readme


def main(argv: list[str] | None = None) -> int:
    """``satclip report [params.yaml]``: rebuild the index and README from the results on disk."""
    import argparse

    from satclip.config import ConfigError, load_params
    from satclip.reporting.summary import recorded_figures

    parser = argparse.ArgumentParser(prog="satclip report",
                                     description="Rebuild results/index.html and results/README.md from disk.")
    parser.add_argument("params", nargs="?", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in write_report(params, recorded_figures(params)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
