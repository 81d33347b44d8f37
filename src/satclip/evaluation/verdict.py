"""Does pretraining add something? The pretrained encoder against its baselines, paired over runs.

For every task x probe x split, the primary metric (``metrics.primary_metric``) of ``satclip``
is compared with each baseline seed by seed: seed i of ``satclip`` fits pretraining run i, seed i
of ``satclip-random`` fits initialization i, and both share seed i's split and probe seed, so the
differences d_i are paired. Their mean and a two-sided 95 % Student-t interval
(mean +- t_{0.975, n-1} s / sqrt(n)) give the outcome: **win** when the interval lies above 0,
**loss** when below, **tie** otherwise, **n/a** when fewer than 2 pairs exist (a cell without
scores, e.g. no test point on the held-out continent). With 3 pairs the interval is wide
(t = 4.30): a win needs a difference that every run shows.

The same comparison on the probes' validation loss (``metric="val_loss"``, lower is better) is the
**validation verdict**: it uses no test point, so a sweep's default can be chosen by it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from satclip.data.labels import TASKS
from satclip.evaluation.metrics import LOWER_IS_BETTER, VAL_LOSS, primary_metric

ENCODER = "satclip"
BASELINES = ("satclip-random", "raw")
OUTCOMES = ("win", "tie", "loss", "n/a")
VERDICT_COLUMNS = ["task", "probe", "split", "metric", "baseline", "n", "mean_diff", "ci_low", "ci_high",
                   "outcome", "note"]


def results_kind(task: str, rows: pd.DataFrame) -> str:
    """"regression" or "classification": from ``TASKS``, else from the metrics of its result rows."""
    if task in TASKS:
        return TASKS[task].kind
    return "classification" if "accuracy" in set(rows["metric"]) else "regression"


def paired_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences (n,) and its two-sided Student-t interval at ``level``."""
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def outcome(low: float, high: float, lower_is_better: bool = False) -> str:
    """``win`` / ``loss`` when the interval of (ours - baseline) excludes 0, else ``tie``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    if lower_is_better:
        low, high = -high, -low
    return "win" if low > 0 else "loss" if high < 0 else "tie"


def paired_verdict(scores: pd.DataFrame, results: pd.DataFrame, encoder: str = ENCODER,
                   baselines: tuple[str, ...] = BASELINES, level: float = 0.95,
                   metric: str | None = None) -> pd.DataFrame:
    """``VERDICT_COLUMNS``: ``encoder`` against each baseline in every task x probe x split of ``results``.

    ``scores``: one row per fit (``run.SCORE_COLUMNS``); ``results``: the tidy table (its cells
    enumerate the comparisons, its notes say why a cell has no scores). ``metric``: the metric
    compared (default: each cell's primary metric; ``"val_loss"``: the validation verdict).
    """
    chosen = metric
    rows = []
    cells = results[results["encoder"] == encoder][["task", "probe", "split"]].drop_duplicates()
    for task, probe, split in cells.itertuples(index=False):
        kind = results_kind(task, results[results["task"] == task])
        metric = chosen or primary_metric(kind, split)
        here = scores[(scores["task"] == task) & (scores["probe"] == probe) & (scores["split"] == split)
                      & (scores["metric"] == metric)]
        ours = here[here["encoder"] == encoder].set_index("seed")["value"].dropna()
        for base in baselines:
            theirs = here[here["encoder"] == base].set_index("seed")["value"].dropna()
            common = ours.index.intersection(theirs.index)
            d = (ours[common] - theirs[common]).to_numpy()
            mean, low, high = paired_interval(d, level) if len(d) else (math.nan, math.nan, math.nan)
            note = ""
            if len(d) < 2:
                cell = results[(results["task"] == task) & (results["probe"] == probe) & (results["split"] == split)
                               & (results["metric"] == metric) & results["encoder"].isin([encoder, base])]
                notes = [str(n) for n in cell["note"].dropna() if str(n) and str(n) != "nan"]
                note = notes[0] if notes else f"{len(d)} paired scores (an interval needs 2)"
            rows.append({"task": task, "probe": probe, "split": split, "metric": metric, "baseline": base,
                         "n": len(d), "mean_diff": mean, "ci_low": low, "ci_high": high,
                         "outcome": outcome(low, high, metric in LOWER_IS_BETTER), "note": note})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def verdict_counts(verdict: pd.DataFrame) -> dict:
    """``probe -> split -> {baseline: {outcome: count}, "beats_all": tasks won against every baseline}``."""
    out: dict = {}
    for (probe, split), sub in verdict.groupby(["probe", "split"], sort=False):
        leaf = out.setdefault(probe, {}).setdefault(split, {})
        for base, rows in sub.groupby("baseline", sort=False):
            counts = rows["outcome"].value_counts()
            leaf[f"vs {base}"] = {o: int(counts.get(o, 0)) for o in OUTCOMES}
        wins = sub.pivot_table(index="task", columns="baseline", values="outcome", aggfunc="first")
        leaf["beats_all"] = int((wins == "win").all(axis=1).sum())
        leaf["tasks"] = int(len(wins))
    return out


def validation_margin(scores: pd.DataFrame, encoder: str = ENCODER,
                      baselines: tuple[str, ...] = BASELINES) -> dict:
    """How far ``encoder``'s probe validation loss is below the best baseline's, per probe and split.

    Per task: ``1 - ours / best``, where ``ours`` is the mean ``val_loss`` of ``encoder`` over
    seeds and ``best`` the lowest such mean among ``baselines`` (positive: below every baseline;
    0.05: 5 % lower). Over tasks, the ratios' geometric mean, ``1 - exp(mean log(ours / best))``,
    so that one task with a tiny baseline loss (3x: -200 %) does not outweigh the rest. A
    continuous score on validation alone, so sweep points can be ranked where the validation
    verdict's counts all tie. Returns ``probe -> split -> {"margin": over tasks, "leads": tasks
    with a positive margin, "tasks": tasks with a value, "per_task": {task: margin}}``; a probe /
    split without validation losses is left out.
    """
    sub = scores[(scores["metric"] == VAL_LOSS) & scores["encoder"].isin([encoder, *baselines])]
    means = sub.dropna(subset=["value"]).groupby(["probe", "split", "task", "encoder"], sort=False)["value"].mean()
    out: dict = {}
    for (probe, split, task), losses in means.groupby(level=["probe", "split", "task"], sort=False):
        losses = losses.droplevel(["probe", "split", "task"])
        theirs = losses.reindex(list(baselines))
        if encoder not in losses or theirs.isna().any():
            continue
        best = float(theirs.min())
        if not best > 0:
            continue
        leaf = out.setdefault(probe, {}).setdefault(split, {"per_task": {}})
        leaf["per_task"][task] = 1 - float(losses[encoder]) / best
    for per_split in out.values():
        for leaf in per_split.values():
            margins = list(leaf["per_task"].values())
            ratio = float(np.exp(np.mean(np.log1p(-np.asarray(margins)))))   # geometric mean of ours / best
            leaf.update(margin=round(1 - ratio, 6), leads=sum(m > 0 for m in margins),
                        tasks=len(margins))
            leaf["per_task"] = {t: round(m, 6) for t, m in leaf.pop("per_task").items()}   # the summary first
    return out


def counts_sentence(counts: dict, probe: str = "mlp", what: str = "validation loss") -> str:
    """One sentence from ``verdict_counts`` output: tasks won against every baseline, per split of ``probe``."""
    per_split = counts.get(probe) or {}
    parts = [f"{split} {leaf['beats_all']} of {leaf['tasks']}" for split, leaf in per_split.items()
             if "beats_all" in leaf]
    if not parts:
        return f"No {probe} probe result has a {what}."
    return (f"On the probes' {what} (no test point), `{ENCODER}` beats every baseline beyond the paired "
            f"95 % interval with the {probe} probe on: " + "; ".join(parts) + " tasks.")


def margin_sentence(margins: dict, probe: str = "mlp") -> str:
    """One sentence from ``validation_margin`` output: the margin per split of ``probe`` (geometric mean over tasks)."""
    per_split = margins.get(probe) or {}
    parts = [f"{split} {100 * leaf['margin']:+.1f} % (lower on {leaf['leads']} of {leaf['tasks']} tasks)"
             for split, leaf in per_split.items() if "margin" in leaf]
    if not parts:
        return f"No {probe} probe result has a validation loss."
    return (f"`{ENCODER}`'s {probe} validation loss relative to the best baseline's, geometric mean over "
            "tasks (+: that much lower): " + "; ".join(parts) + ".")


def beats_all(verdict: pd.DataFrame, probe: str, split: str) -> list[str]:
    """Tasks where the encoder wins against every baseline (one probe and split)."""
    sub = verdict[(verdict["probe"] == probe) & (verdict["split"] == split)]
    won = sub.groupby("task", sort=False)["outcome"].apply(lambda o: bool((o == "win").all()))
    return [t for t, ok in won.items() if ok]


# --------------------------------------------------------------------------------------------
# Renderings
# --------------------------------------------------------------------------------------------

PROTOCOLS = (("mlp", "continent"), ("mlp", "checkerboard"))  # the paper's protocol, then ours


def _splits_of(verdict: pd.DataFrame, probe: str, split: str) -> list[str]:
    """``split`` itself, or every ``continent:<name>`` split when ``split`` is ``continent``."""
    names = list(dict.fromkeys(verdict.loc[verdict["probe"] == probe, "split"]))
    return [s for s in names if s == split or s.startswith(f"{split}:")]


def verdict_sentence(verdict: pd.DataFrame, probe: str, split: str, encoder: str = ENCODER) -> str:
    """One sentence per split: on how many tasks ``encoder`` beats every baseline, and the counts."""
    parts = []
    for name in _splits_of(verdict, probe, split):
        sub = verdict[(verdict["probe"] == probe) & (verdict["split"] == name)]
        if sub.empty:
            continue
        tasks = list(dict.fromkeys(sub["task"]))
        won = beats_all(verdict, probe, name)
        per_base = []
        for base, rows in sub.groupby("baseline", sort=False):
            c = rows["outcome"].value_counts()
            per_base.append(f"against {base} {c.get('win', 0)} wins, {c.get('tie', 0)} ties, "
                            f"{c.get('loss', 0)} losses" + (f", {c.get('n/a', 0)} n/a" if c.get("n/a", 0) else ""))
        parts.append(f"{probe} probe, {name} split: `{encoder}` beats every baseline beyond the paired 95 % "
                     f"interval on {len(won)} of {len(tasks)} tasks" + (f" ({', '.join(won)})" if won else "")
                     + "; " + "; ".join(per_base) + ".")
    return " ".join(parts)


def _cell(row) -> str:
    if row.outcome == "n/a":
        return "n/a"
    return f"{row.mean_diff:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}] **{row.outcome}**"


def verdict_markdown(verdict: pd.DataFrame, probe: str, split: str) -> str:
    """A Markdown table per split: tasks as rows, one column per baseline (difference [95 % CI] outcome)."""
    out = []
    for name in _splits_of(verdict, probe, split):
        sub = verdict[(verdict["probe"] == probe) & (verdict["split"] == name)]
        bases = list(dict.fromkeys(sub["baseline"]))
        lines = [f"**{probe} probe, {name} split** (`{ENCODER}` minus baseline; mean over paired seeds "
                 "and runs [95 % interval])", "",
                 "| task | metric | n | " + " | ".join(f"vs {b}" for b in bases) + " |",
                 "|---|---|---:|" + "---|" * len(bases)]
        notes = []
        for task, rows in sub.groupby("task", sort=False):
            rows = rows.set_index("baseline")
            cells = [_cell(rows.loc[b]) if b in rows.index else "n/a" for b in bases]
            lines.append(f"| {task} | {rows['metric'].iloc[0]} | {int(rows['n'].max())} | " + " | ".join(cells) + " |")
            for b in bases:
                if b in rows.index and rows.loc[b, "outcome"] == "n/a":
                    notes.append(f"{task} vs {b}: {rows.loc[b, 'note']}")
        if notes:
            lines += ["", "n/a: " + "; ".join(dict.fromkeys(notes))]
        out.append("\n".join(lines))
    return "\n\n".join(out)
