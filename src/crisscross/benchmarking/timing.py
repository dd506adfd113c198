"""Wall-clock timing and peak-memory measurement for benchmarks.

Timing follows timm's ``benchmark.py`` and nanoGPT's ``bench.py``: warm up first (lazy initialisation, oneDNN /
cuDNN algorithm choice, ``torch.compile``), then time every iteration on its own with ``time.perf_counter``
bracketed by ``torch.cuda.synchronize`` on CUDA, so an asynchronous kernel queue is never mistaken for a fast
step. The summary is the median and the 10th/90th percentiles, not a single mean.

Peak memory:

* CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` at the start of the
  measurement, i.e. the largest amount of tensor memory held at once (weights, optimizer state, activations);
  the caching allocator's reserved-but-free blocks are not counted.
* CPU: PyTorch keeps no allocator statistics for CPU tensors, and ``tracemalloc`` does not see them (they are
  allocated in C++), so the process's resident-set high-water mark is measured instead: at the start, writing
  ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0) resets ``VmHWM`` to the current ``VmRSS``; at the end
  ``VmHWM - VmRSS_start`` is the peak growth of resident memory over the measurement. This includes allocator
  overhead and oneDNN scratch space, and it is exact only in a fresh process: in a long-lived process glibc may
  reuse pages it kept from earlier work, so the number is then a lower bound (``crisscross bench --isolate``
  runs every cell in its own process for this reason). Where ``clear_refs`` is not writable the meter falls back
  to ``VmHWM`` (peak since process start) minus the start RSS, which is also exact only in a fresh process whose
  earlier peak was not higher; the method used is recorded with every measurement.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["MemoryMeter", "TimingStats", "read_proc_status_kb", "summarize_times", "synchronize", "time_iterations"]


@dataclass(frozen=True)
class TimingStats:
    """Summary of per-iteration wall times (milliseconds)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    iters: int


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (CUDA); a no-op on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of an ascending list (numpy's default method)."""
    if not sorted_values:
        raise ValueError("no values to summarise")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize_times(times_s: list[float]) -> TimingStats:
    """Median, p10, p90, mean and min (ms) of per-iteration times given in seconds.

    Args:
        times_s: one wall time per timed iteration, seconds (at least one).

    Returns:
        The summary in milliseconds.
    """
    if not times_s:
        raise ValueError("no timed iterations: use --iters >= 1")
    ms = sorted(t * 1000.0 for t in times_s)
    return TimingStats(median_ms=_percentile(ms, 50), p10_ms=_percentile(ms, 10), p90_ms=_percentile(ms, 90),
                       mean_ms=sum(ms) / len(ms), min_ms=ms[0], iters=len(ms))


def time_iterations(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` times, each timed alone.

    Each timed iteration is ``synchronize; t0; fn(); synchronize; t1`` so on CUDA the time covers the kernels
    ``fn`` queued, not only their launch.

    Args:
        fn: one benchmark iteration (e.g. a forward pass or a full training step).
        device: where ``fn`` runs; CUDA is synchronised around every timed iteration.
        warmup: untimed iterations first (>= 0).
        iters: timed iterations (>= 1).

    Returns:
        ``iters`` wall times in seconds.
    """
    if warmup < 0 or iters < 1:
        raise ValueError(f"need warmup >= 0 and iters >= 1, got warmup={warmup}, iters={iters}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def read_proc_status_kb(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmRSS``, ``VmHWM``), or None where unavailable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS through ``/proc/self/clear_refs``; False where not permitted."""
    path = Path("/proc/self/clear_refs")
    try:
        with open(path, "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryMeter:
    """Peak memory over a measurement: CUDA allocator peak, or CPU resident-set peak growth (see module doc).

    Usage::

        meter = MemoryMeter(device, fresh_process=True)
        meter.start()
        ...  # build the model, run the iterations
        peak_mb = meter.peak_mb()
        meter.method  # how it was measured, recorded next to the number
    """

    def __init__(self, device: torch.device, fresh_process: bool = False) -> None:
        self.device = device
        self.fresh_process = fresh_process
        self.method = "unavailable"
        self._start_rss_kb: int | None = None

    def start(self) -> None:
        """Begin the measurement (collect garbage, reset the peak)."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda_max_memory_allocated"
            return
        where = "fresh process" if self.fresh_process else "shared process, lower bound"
        self._start_rss_kb = read_proc_status_kb("VmRSS")
        if self._start_rss_kb is None:
            self.method = "unavailable"
        elif _reset_rss_peak():
            self.method = f"cpu_rss_peak_growth ({where})"
        else:
            self.method = f"cpu_vmhwm_minus_start_rss ({where})"

    def peak_mb(self) -> float | None:
        """Peak memory since :meth:`start` in MiB (None where it cannot be measured)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        hwm = read_proc_status_kb("VmHWM")
        if hwm is None or self._start_rss_kb is None:
            return None
        return max(0, hwm - self._start_rss_kb) / 1024.0
