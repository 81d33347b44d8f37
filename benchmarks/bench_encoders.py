"""Throughput of the SatCLIP location encoder: ours against torchgeo's ``SatCLIP``, same points.

Writes ``results/bench/encoders.json``: a list of records
``{impl, part, L, dtype, device, batch, points_per_s, peak_mem_mb}`` with ``impl`` in
{``satclip`` (this package), ``torchgeo`` (``torchgeo.models.satclip.SatCLIP``)} and ``part`` in
{``positional`` (spherical-harmonic features), ``network`` (the SIREN alone on precomputed
features), ``full`` (both)}, for L in {10, 40}, float32 and float64, batches of 1,024 and 65,536
(``--quick``: 1,024 and 8,192, fewer repeats). Both implementations hold the same SIREN weights.
``results/bench/encoders_summary.json`` holds the goal ratios of issue 3 and the environment.

Timings: threads pinned (``OMP_PROC_BIND=true`` unless set, ``--threads``, default 2), one
warm-up call, then the median of repeated calls (``points_per_s``; the fastest repeat is kept as
``points_per_s_best``), the implementations interleaved so that load from other processes hits
both alike. On a machine shared with other jobs every small operation can wait a scheduler time
slice for its second thread, so compare ratios from the same run and check the load average
recorded in the summary. ``peak_mem_mb`` (CPU): growth of the peak resident set
during the warm-up call after returning free heap memory to the OS (Linux; else null); on CUDA
the peak of ``torch.cuda.max_memory_allocated`` above the memory in use before the call.

Run: ``python benchmarks/bench_encoders.py [--quick] [--threads N] [--device cpu|cuda]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_PROC_BIND", "true")  # read when torch's OpenMP runtime starts

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from satclip.encoders.location import LocationEncoder, LocationEncoderConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Goals of issue 3 (L = 40, float32, CPU, the largest batch)
GOAL_SH_SPEEDUP = 3.0  # our SH features vs torchgeo's
GOAL_FULL_VS_SIREN = 0.8  # our full encoder vs the SIREN alone


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure_peak_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Run ``fn`` once and return the peak memory it added, in MB (None when unmeasurable)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    if _LIBC is None or _status_kb("VmRSS") is None:
        fn()
        return None
    _LIBC.malloc_trim(0)  # hand free heap pages back, so reused memory shows up again
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        fn()
        return None
    before = _status_kb("VmRSS")
    fn()
    peak = _status_kb("VmHWM")
    return max(0.0, (peak - before) / 1024) if peak is not None and before is not None else None


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_group(fns: dict[tuple[str, str], Callable[[], object]], device: torch.device, calls: int,
                repeats: int) -> dict[tuple[str, str], tuple[float, float, float | None]]:
    """Median and best seconds per call and peak MB of every function, interleaving their repeats."""
    peaks = {key: measure_peak_mb(fn, device) for key, fn in fns.items()}  # doubles as warm-up
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            _sync(device)
            samples[key].append((time.perf_counter() - start) / calls)
    return {key: (statistics.median(samples[key]), min(samples[key]), peaks[key]) for key in fns}


def torchgeo_encoder(L: int, dtype: torch.dtype, nnet_state: dict) -> torch.nn.Module:
    """Torchgeo's SatCLIP with our SIREN weights, its SH constants built in ``dtype``."""
    from torchgeo.models.satclip import SatCLIP

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = SatCLIP(legendre_polys=L, capacity=512, embed_dim=256, num_hidden_layers=2)
    finally:
        torch.set_default_dtype(previous)
    model.nnet.load_state_dict(nnet_state)
    return model.to(dtype).eval()


def workloads(ours: torch.nn.Module, theirs: torch.nn.Module, pts: torch.Tensor, feats: torch.Tensor
              ) -> dict[tuple[str, str], Callable[[], object]]:
    """(impl, part) -> a call to time."""
    return {
        ("satclip", "positional"): lambda: ours.posenc(pts),
        ("torchgeo", "positional"): lambda: theirs.posenc(pts),
        ("satclip", "network"): lambda: ours.nnet(feats),
        ("torchgeo", "network"): lambda: theirs.nnet(feats),
        ("satclip", "full"): lambda: ours(pts),
        ("torchgeo", "full"): lambda: theirs(pts),
    }


def run(quick: bool, device: torch.device, Ls: tuple[int, ...], dtypes: tuple[str, ...] = tuple(DTYPES),
        batches: tuple[int, ...] | None = None) -> list[dict]:
    batches = batches or ((1024, 8192) if quick else (1024, 65536))
    records = []
    for L in Ls:
        for dtype_name in dtypes:
            dtype = DTYPES[dtype_name]
            torch.manual_seed(0)
            ours = LocationEncoder.from_config(LocationEncoderConfig(legendre_polys=L, dtype=dtype_name)).to(device).eval()
            theirs = torchgeo_encoder(L, dtype, ours.nnet.state_dict()).to(device)
            for batch in batches:
                g = torch.Generator().manual_seed(batch)
                pts = torch.stack([torch.rand(batch, generator=g) * 360 - 180, torch.rand(batch, generator=g) * 180 - 90],
                                  dim=1).to(device=device, dtype=dtype)
                with torch.inference_mode():
                    feats = ours.posenc(pts).contiguous()  # the same features for both networks
                fns = workloads(ours, theirs, pts, feats)
                calls = max(1, (8192 if quick else 16384) // batch)
                repeats = 3 if quick or batch > 8192 else 5
                with torch.inference_mode():
                    results = bench_group(fns, device, calls, repeats)
                for (impl, part), (seconds, best, peak) in results.items():
                    records.append(dict(impl=impl, part=part, L=L, dtype=dtype_name, device=device.type, batch=batch,
                                        points_per_s=round(batch / seconds, 1),
                                        peak_mem_mb=None if peak is None else round(peak, 1),
                                        points_per_s_best=round(batch / best, 1)))
                    print(f"L={L:>2} {dtype_name} batch={batch:>6} {impl:>8} {part:>10}: "
                          f"{batch / seconds:>12,.0f} points/s  peak {peak if peak is None else round(peak, 1)} MB",
                          flush=True)
    return records


def summarize(records: list[dict], key: str = "points_per_s") -> dict:
    """Goal ratios at L = 40, float32, on the largest batch (and the same ratios for every setting).

    ``key`` picks the statistic: ``points_per_s`` (medians) or ``points_per_s_best``.
    """
    def rate(impl: str, part: str, L: int, dtype: str, batch: int) -> float:
        return next(r[key] for r in records if (r["impl"], r["part"], r["L"], r["dtype"], r["batch"]) ==
                    (impl, part, L, dtype, batch))

    table = []
    for L, dtype, batch in sorted({(r["L"], r["dtype"], r["batch"]) for r in records}):
        table.append(dict(
            L=L, dtype=dtype, batch=batch,
            sh_speedup_vs_torchgeo=round(rate("satclip", "positional", L, dtype, batch)
                                         / rate("torchgeo", "positional", L, dtype, batch), 2),
            full_vs_own_siren=round(rate("satclip", "full", L, dtype, batch) / rate("satclip", "network", L, dtype, batch), 3),
            full_vs_torchgeo_siren=round(rate("satclip", "full", L, dtype, batch)
                                         / rate("torchgeo", "network", L, dtype, batch), 3),
            full_speedup_vs_torchgeo=round(rate("satclip", "full", L, dtype, batch)
                                           / rate("torchgeo", "full", L, dtype, batch), 2),
            torchgeo_full_vs_siren=round(rate("torchgeo", "full", L, dtype, batch)
                                         / rate("torchgeo", "network", L, dtype, batch), 3),
        ))
    largest = max(r["batch"] for r in records)
    goal = next((row for row in table if (row["L"], row["dtype"], row["batch"]) == (40, "float32", largest)), None)
    goals = None
    if goal is not None:
        goals = dict(
            setting=dict(L=40, dtype="float32", batch=largest),
            sh_speedup_vs_torchgeo=dict(measured=goal["sh_speedup_vs_torchgeo"], goal=GOAL_SH_SPEEDUP,
                                        met=goal["sh_speedup_vs_torchgeo"] >= GOAL_SH_SPEEDUP),
            full_vs_siren=dict(measured=goal["full_vs_own_siren"], goal=GOAL_FULL_VS_SIREN,
                               met=goal["full_vs_own_siren"] >= GOAL_FULL_VS_SIREN,
                               against_torchgeo_siren=goal["full_vs_torchgeo_siren"]),
        )
    return dict(goals=goals, ratios=table)


def environment(threads: int, device: torch.device) -> dict:
    import torchgeo

    return dict(threads=threads, device=str(device), OMP_PROC_BIND=os.environ.get("OMP_PROC_BIND"),
                torch=torch.__version__, torchgeo=torchgeo.__version__, python=platform.python_version(),
                machine=platform.machine(), processor=platform.processor() or None, cpu_count=os.cpu_count(),
                load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches and fewer repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--L", type=int, nargs="+", default=[10, 40], help="degrees to measure (default 10 40)")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES), help="default: both")
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="batch sizes (default 1024 65536; --quick: 1024 8192)")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench" / "encoders.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    records = run(args.quick, device, tuple(args.L), tuple(args.dtypes), tuple(args.batches or ()) or None)
    summary = dict(summarize(records), from_best_repeats=summarize(records, "points_per_s_best"),
                   environment=environment(args.threads, device), quick=args.quick,
                   seconds=round(time.perf_counter() - start, 1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(records, indent=1) + "\n")
    summary_path = args.output.with_name(args.output.stem + "_summary.json")
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["goals"], indent=1))
    print(f"wrote {args.output} and {summary_path} in {summary['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
