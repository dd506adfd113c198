"""The latency benchmark runs end to end: one row per model and runtime, each with its ratio against eager."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "bench_latency.py"


@pytest.mark.integration
def test_prints_a_row_per_model_and_runtime_with_the_ratio_against_eager():
    runtimes = "eager,onnx" if importlib.util.find_spec("onnxruntime") else "eager"
    out = subprocess.run([sys.executable, str(SCRIPT), "--models", "simlpe,stcformer-lift-small", "--runtimes",
                          runtimes, "--iters", "5", "--warmup", "1"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.stdout.splitlines()
            if line.startswith(("| simlpe", "| stcformer-lift-small"))]
    assert [r[1] for r in rows] == runtimes.split(",") * 2
    for cells in rows:
        p50, p99, rate = float(cells[2]), float(cells[3]), float(cells[4].replace(",", ""))
        # the rate comes from the unrounded p50, printed to 0.01 ms
        assert 0 < p50 <= p99 and rate == pytest.approx(1000 / p50, rel=0.0051 / p50 + 0.001, abs=1)
        assert cells[5].endswith("x") and float(cells[6]) <= 1e-4  # the same predictions as eager
    assert all(r[5] == "1.00x" for r in rows if r[1] == "eager")


def test_an_unknown_runtime_is_refused():
    out = subprocess.run([sys.executable, str(SCRIPT), "--runtimes", "tensorrt"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 2 and "tensorrt" in out.stderr
