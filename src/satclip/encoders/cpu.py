"""CPU plumbing for the location encoders: huge-page buffers, a per-point thread pool, a workspace.

Evaluating the spherical harmonics of many points writes large fresh buffers and runs many short
tensor operations; both costs are dominated by the CPU rather than by arithmetic (measured in
``benchmarks/bench_encoders.py``). This module keeps those tricks apart from the mathematics.
"""

from __future__ import annotations

import math
import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

__all__ = ["empty_features", "parallel_over_points", "workspace_buffer", "release_workspace",
           "set_workspace_busy", "WORKSPACE_BYTES"]

_HUGE_PAGE_MIN_BYTES = 32 << 20  # outputs from this size on get transparent huge pages


def empty_features(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """``torch.empty`` that backs large CPU tensors with transparent huge pages where possible.

    Writing a fresh multi-hundred-MB feature buffer is dominated by page faults (L = 40,
    65,536 points, float32: 420 MB, ~100k faults); with 2 MiB pages (Linux, THP mode "madvise"
    or "always") the first touch is several times cheaper. Falls back to ``torch.empty``.
    """
    device = torch.device(device)
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if device.type == "cpu" and nbytes >= _HUGE_PAGE_MIN_BYTES and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            buffer.madvise(mmap.MADV_HUGEPAGE)
            return torch.frombuffer(buffer, dtype=dtype).view(shape)  # the tensor keeps the mapping alive
        except (OSError, ValueError, AttributeError):
            pass
    return torch.empty(shape, dtype=dtype, device=device)


# CPU evaluation splits the points across a small thread pool whose workers each run torch
# single-threaded (``torch.set_num_threads`` is per thread with the OpenMP backend). A degree
# step is a few short tensor operations; run as OpenMP regions, each waits for all its threads,
# and on a CPU shared with other jobs that wait is a scheduler time slice per operation (3x
# slower measured with one busy neighbour). Independent workers never wait for each other.
_MIN_POINTS_PER_WORKER = 4096
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _single_threaded_worker() -> None:
    if "OpenMP" in torch.__config__.parallel_info():  # else set_num_threads would be process-wide
        torch.set_num_threads(1)


def _pool_of(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="satclip-cpu", initializer=_single_threaded_worker)
            _pool_size = threads
        return _pool


def _forget_pool() -> None:  # a forked child has the pool object but not its threads
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _fill_slice(fill: Callable[..., None], out: Tensor, *args: object) -> None:
    with torch.inference_mode():
        fill(out, *args)


def parallel_over_points(fill: Callable[..., None], out: Tensor, x: Tensor, s: Tensor, phi: Tensor,
                         *rest: object) -> None:
    """Run ``fill(out, x, s, phi, *rest)``, on the CPU split over the points across pool workers.

    The points (last axis of ``out``, the (n,) inputs) are split across
    ``torch.get_num_threads()`` pool workers on the CPU; elsewhere ``fill`` runs directly.
    """
    n, threads = x.shape[0], torch.get_num_threads()
    if out.device.type != "cpu" or threads < 2 or n == 0:
        fill(out, x, s, phi, *rest)
        return
    workers = max(1, min(threads, n // _MIN_POINTS_PER_WORKER))  # small inputs: one worker
    step = -(-n // workers)
    pool = _pool_of(threads)
    parts = [pool.submit(_fill_slice, fill, out[:, i : i + step], x[i : i + step], s[i : i + step],
                         phi[i : i + step], *rest) for i in range(0, n, step)]
    for part in parts:
        part.result()


# Inference without autograd computes the spherical harmonics of at most this many bytes of
# features at a time (81,920 points at L = 40, float32), so memory stays bounded for any batch.
# Chunks are large on purpose: each costs a round of network calls, and on a CPU shared with
# other jobs every parallel operation can wait a scheduler time slice for its threads (64 MB
# chunks measured ~10 % faster on an idle machine and up to 2x slower on a busy one).
WORKSPACE_BYTES = 512 << 20
# The feature buffer is kept per thread between calls: a fresh one costs its page faults (and
# the kernel's zeroing) on every call, about a quarter of the harmonics' time at L = 40.
_workspace = threading.local()


def release_workspace() -> None:
    """Free this thread's cached spherical-harmonics buffer (at most 512 MB; reallocated on demand)."""
    _workspace.buffer = None


def workspace_buffer(numel: int, dtype: torch.dtype, device: torch.device) -> Tensor | None:
    """This thread's reusable 1-D buffer of ``numel`` elements, or None while it is in use."""
    if device.type != "cpu" or getattr(_workspace, "busy", False):  # GPUs cache memory anyway;
        return None  # re-entered (e.g. from a hook): a fresh buffer
    buffer = getattr(_workspace, "buffer", None)
    # a buffer made under inference_mode cannot be written outside it (and the reverse is wasteful)
    stale_mode = buffer is not None and buffer.is_inference() != torch.is_inference_mode_enabled()
    if buffer is None or stale_mode or buffer.numel() < numel or buffer.dtype != dtype or buffer.device != device:
        _workspace.buffer = None  # free the old one first
        buffer = _workspace.buffer = empty_features((numel,), dtype, device)
    return buffer[:numel]


def set_workspace_busy(busy: bool) -> None:
    """Mark this thread's buffer in use (a re-entrant call then gets a fresh one) or free again."""
    _workspace.busy = busy
