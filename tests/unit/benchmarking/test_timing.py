"""Timing summaries, per-iteration timing and the peak-memory meter."""

from __future__ import annotations

import pytest
import torch

from crisscross.benchmarking.timing import read_proc_status_kb, summarize_times, time_iterations


def test_summary_percentiles_match_numpy_linear_rule() -> None:
    stats = summarize_times([0.001 * k for k in range(1, 11)])  # 1..10 ms
    assert stats.median_ms == pytest.approx(5.5)
    assert stats.p10_ms == pytest.approx(1.9)  # numpy.percentile([1..10], 10)
    assert stats.p90_ms == pytest.approx(9.1)
    assert stats.mean_ms == pytest.approx(5.5)
    assert stats.min_ms == pytest.approx(1.0)
    assert stats.iters == 10


def test_summary_rejects_empty() -> None:
    with pytest.raises(ValueError, match="iters"):
        summarize_times([])


def test_time_iterations_runs_warmup_untimed() -> None:
    calls = []
    times = time_iterations(lambda: calls.append(1), torch.device("cpu"), warmup=3, iters=4)
    assert len(calls) == 7 and len(times) == 4 and all(t >= 0 for t in times)
    with pytest.raises(ValueError):
        time_iterations(lambda: None, torch.device("cpu"), warmup=0, iters=0)


@pytest.mark.skipif(read_proc_status_kb("VmRSS") is None, reason="needs /proc/self/status (Linux)")
def test_cpu_meter_sees_a_fresh_allocation() -> None:
    # In a fresh process, as the meter documents: inside a long test session the allocator may hand back
    # memory that earlier tests freed but that is still resident, and the growth then reads 0.
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from crisscross.benchmarking.timing import MemoryMeter\n"
        "meter = MemoryMeter(torch.device('cpu'))\n"
        "meter.start()\n"
        "x = torch.ones(16 * 2**20)\n"  # 64 MiB, every page touched
        "print(meter.peak_mb())\n"
        "print(meter.method)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    peak, method = float(out[0]), out[1]
    assert peak >= 60
    assert "cpu" in method and "lower bound" in method
