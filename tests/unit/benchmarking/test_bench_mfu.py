"""benchmarks/bench_mfu.py runs the three variants in their own workers and prints their MFU and the ratios."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "bench_mfu.py"


@pytest.mark.integration
def test_prints_baseline_layouts_and_engine_rows_with_mfu_and_equal_first_losses():
    out = subprocess.run([sys.executable, str(SCRIPT), "--batch-size", "4", "--rounds", "1", "--steps", "1",
                          "--warmup", "1", "--threads", "1"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    start = next(float(line.split()[3].replace(",", "")) for line in lines if line.startswith("bf16 matmul ceiling"))
    end = next(float(line.split()[6].replace(",", "")) for line in lines
               if line.startswith("at the end: bf16 matmul ceiling"))
    # MFU is against the higher of the readings before the workers start and after they are gone.
    ceiling = next(float(line.split()[3]) for line in lines if line.startswith("bf16 MFU against"))
    assert ceiling == pytest.approx(max(start, end), abs=0.051) and min(start, end) > 0
    assert any(line.startswith("load average at the end:") for line in lines)
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines
                                          if line.startswith(("| baseline", "| layouts", "| engine")))}
    assert set(rows) == {"baseline", "layouts", "engine"}
    assert rows["baseline"][6] == rows["baseline"][8] == "1.00x"
    for cells in rows.values():
        assert cells[1] == "bf16"
        gflops, mfu = float(cells[4].replace(",", "")), float(cells[5])
        assert mfu == pytest.approx(100 * gflops / ceiling, rel=0.02, abs=0.05)
        assert float(cells[7]) == pytest.approx(mfu, rel=0.02, abs=0.05)  # one round: best = median
    # Same initial weights and batch, same numbers to float rounding: the first losses agree.
    for name in ("layouts", "engine"):
        assert float(rows[name][9]) == pytest.approx(float(rows["baseline"][9]), rel=1e-2)
        assert float(rows[name][10]) > 0  # the worker's peak resident memory, GiB
    # Each worker reports its allocator: only the engine's process changed glibc's settings.
    allocators = {line.split(" (")[0]: line.split("allocator ", 1)[1] for line in lines if "): allocator " in line}
    assert allocators["baseline"] == allocators["layouts"] == "default"
    assert allocators["engine"].startswith(("retain", "default ("))


def test_rejects_an_unknown_variant():
    out = subprocess.run([sys.executable, str(SCRIPT), "--variants", "baseline,turbo"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2 and "unknown 'turbo'" in out.stderr
