"""The training-throughput benchmark runs end to end and prints the engine/usual ratio per variant."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "bench_train_throughput.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO)


@pytest.mark.integration
def test_prints_one_row_per_variant_with_a_ratio():
    out = _run("--configs", "configs/forecast/h36m_simlpe.yaml", "--steps", "1", "--rounds", "1", "--warmup", "1",
               "--batch-size", "8", "--workers", "0", "--engine", "fp32,bf16")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| simlpe-48")]
    assert len(rows) == 2
    ceilings = {words[0]: float(words[3].replace(",", "")) for words in map(str.split, out.stdout.splitlines())
                if words[1:3] == ["matmul", "ceiling"]}
    assert set(ceilings) == {"fp32", "bf16"} and all(c > 0 for c in ceilings.values())
    assert "MFU % = GFLOP/s / the matmul ceiling" in out.stdout
    for row, variant in zip(rows, ("fp32", "bf16")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "137,580" and cells[2] == "50->10" and cells[5].startswith(variant)
        flops = float(cells[8]) * 1e9
        for rate, gflops, mfu, ceiling in ((cells[4], cells[9], cells[10], ceilings["fp32"]),
                                           (cells[6], cells[11], cells[12], ceilings[variant])):
            # achieved = FLOPs/sample x samples/s, MFU = achieved / ceiling, each from rounded printed values
            assert float(gflops.replace(",", "")) == pytest.approx(flops * float(rate.replace(",", "")) / 1e9,
                                                                   rel=0.02, abs=0.01)
            assert float(mfu) == pytest.approx(100 * float(gflops.replace(",", "")) / ceiling, rel=0.02, abs=0.01)
        usual, engine, ratio = float(cells[4].replace(",", "")), float(cells[6].replace(",", "")), cells[7]
        assert usual > 0 and engine > 0
        assert re.fullmatch(r"\d+\.\d\dx", ratio)
        # The ratio comes from the unrounded rates and is printed to 2 decimals (off by up to 0.005); the printed
        # rates are whole numbers (each off by up to 0.5), which moves engine / usual by up to about
        # (engine / usual) * (0.5 / usual + 0.5 / engine). The tolerance is the sum of both roundings.
        recomputed = engine / usual
        tolerance = 0.005 + recomputed * (0.5 / usual + 0.5 / engine) * 1.01
        assert abs(float(ratio[:-1]) - recomputed) <= tolerance, (ratio, usual, engine)


def test_rejects_an_unknown_engine_variant():
    out = _run("--engine", "fp8")
    assert out.returncode == 2
    assert "--engine variant 'fp8'" in out.stderr


@pytest.mark.integration
def test_runs_every_engine_variant_with_every_attention_kernel():
    out = _run("--configs", "configs/forecast/synthetic_small.yaml", "--steps", "1", "--rounds", "1", "--warmup", "1",
               "--batch-size", "8", "--workers", "0", "--engine", "bf16", "--attention", "explicit,math")
    assert out.returncode == 0, out.stderr[-2000:]
    variants = [line.split("|")[6].strip() for line in out.stdout.splitlines() if line.startswith("| stcformer")]
    assert variants == ["bf16 (explicit attention)", "bf16 (math attention)"]


def test_rejects_an_unknown_attention_kernel_and_a_cuda_only_one_on_cpu():
    out = _run("--attention", "fast")
    assert out.returncode == 2
    assert "--attention 'fast'" in out.stderr
    out = _run("--attention", "explicit,cudnn", "--device", "cpu")
    assert out.returncode == 2
    assert "--attention 'cudnn': train.attention=cudnn needs a CUDA device" in out.stderr
