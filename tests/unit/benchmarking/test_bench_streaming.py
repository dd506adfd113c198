"""The streaming benchmark runs end to end: one row per committed forecaster and lifter, with both ratios."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "bench_streaming.py"


@pytest.mark.integration
def test_prints_the_cost_per_new_frame_of_each_model():
    out = subprocess.run([sys.executable, str(SCRIPT), "--iters", "4", "--warmup", "1"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| model")]
    assert [r[0] for r in rows] == ["stcformer", "stcformer-ar", "videopose3d-small", "stcformer-lift"]
    for cells in rows:
        p50, p99, rate, real_time, overhead = (float(c.replace(",", "")) for c in cells[2:7])
        assert 0 < p50 <= p99 and rate == pytest.approx(1000 / p50, rel=0.01)
        assert real_time > 0 and overhead > 0
    assert rows[2][1] == "lift, 13 frames late"
