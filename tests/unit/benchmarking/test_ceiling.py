"""The matmul ceiling and MFU: flop arithmetic on a fake clock, a real tiny measurement, the bench's MFU columns."""

from __future__ import annotations

import math

import pytest
import torch

from crisscross.benchmarking import bench as bench_module
from crisscross.benchmarking.bench import BenchCell, add_mfu, measure_ceilings, run_sweep
from crisscross.benchmarking.ceiling import (
    MatmulCeiling,
    achieved_gflops_per_s,
    ceiling_unsupported,
    matmul_flops,
    measure_matmul_ceiling,
    mfu_pct,
)
from crisscross.benchmarking.table import MFU_CONVENTION, ROW_COLUMNS, format_table


def _ceiling(precision: str = "bf16", gflops: float = 24.0) -> MatmulCeiling:
    return MatmulCeiling(precision=precision, dtype="torch.bfloat16", device="cpu", device_name="Test CPU", threads=2,
                         tf32=False, sizes=(1024, 2048), gflops_per_s=(gflops / 2, gflops), ceiling_gflops_per_s=gflops)


class _WorkClock:
    """A fake clock; the patched ``torch.mm`` advances it by ``n**2`` nanoseconds per ``n x n`` product."""

    def __init__(self) -> None:
        self.now = 0.0
        self.products: list[int] = []

    def __call__(self) -> float:
        return self.now


def test_matmul_flops_is_two_per_multiply_add() -> None:
    assert matmul_flops(3) == 54  # 9 outputs x 3 multiply-adds x 2
    assert matmul_flops(1024) == 2 * 1024**3


def test_ceiling_arithmetic_on_a_fake_clock(monkeypatch) -> None:
    clock = _WorkClock()
    real_mm = torch.mm

    def mm(a, b, out=None):
        clock.now += a.shape[0] ** 2 * 1e-9
        clock.products.append(a.shape[0])
        return real_mm(a, b, out=out)

    monkeypatch.setattr(torch, "mm", mm)
    result = measure_matmul_ceiling("fp32", "cpu", sizes=(4, 8), warmup=1, repeats=2, min_run_s=100e-9, timer=clock)
    # n=4: 128 FLOPs in 16 ns = 8 GFLOP/s; n=8: 1024 FLOPs in 64 ns = 16 GFLOP/s (2n GFLOP/s on this clock)
    assert result.gflops_per_s == pytest.approx((8.0, 16.0), rel=1e-9)
    assert result.ceiling_gflops_per_s == pytest.approx(16.0, rel=1e-9)
    assert (result.precision, result.dtype, result.device, result.sizes) == ("fp32", "torch.float32", "cpu", (4, 8))
    # n=4: 1 warm-up, runs of 1, 2, 4, 8 products (8 x 16 ns >= 100 ns), 1 more repeat of 8; n=8: 1, then 1, 2, 2
    assert clock.products == [4] * (1 + 1 + 2 + 4 + 8 + 8) + [8] * (1 + 1 + 2 + 2)
    assert "n=4: 8.0, n=8: 16.0 GFLOP/s" in result.describe()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tiny_real_measurement_is_positive_and_finite(precision: str) -> None:
    result = measure_matmul_ceiling(precision, torch.device("cpu"), sizes=(8, 16), repeats=2, min_run_s=1e-3)
    assert result.sizes == (8, 16) and len(result.gflops_per_s) == 2
    assert all(g > 0 and math.isfinite(g) for g in result.gflops_per_s)
    assert result.ceiling_gflops_per_s == max(result.gflops_per_s)
    assert result.threads == torch.get_num_threads() and not result.tf32
    assert result.dtype == str({"fp32": torch.float32, "bf16": torch.bfloat16}[precision])


def test_unsupported_precisions_and_bad_arguments() -> None:
    assert ceiling_unsupported("fp32", "cpu") is None and ceiling_unsupported("bf16", "cpu") is None
    assert "fp16" in ceiling_unsupported("fp16", "cpu")
    assert "unknown precision" in ceiling_unsupported("fp8", "cpu")
    with pytest.raises(ValueError, match="fp16"):
        measure_matmul_ceiling("fp16", "cpu", sizes=(8,))
    with pytest.raises(ValueError, match="sizes"):
        measure_matmul_ceiling("fp32", "cpu", sizes=(0,))
    with pytest.raises(ValueError, match="repeats"):
        measure_matmul_ceiling("fp32", "cpu", sizes=(8,), repeats=0)


def test_mfu_arithmetic() -> None:
    assert achieved_gflops_per_s(3e9, 0.5) == pytest.approx(6.0)  # 3 GFLOPs in half a second
    assert mfu_pct(6.0, 24.0) == pytest.approx(25.0)
    with pytest.raises(ValueError):
        achieved_gflops_per_s(1e9, 0.0)
    with pytest.raises(ValueError):
        mfu_pct(1.0, 0.0)


def _row(**kw) -> dict:
    row = {c: None for c in ROW_COLUMNS}
    row.update(model="m", mode="train", batch_size=4, precision="bf16", compile=False, status="ok", device="cpu",
               device_name="Test CPU", threads=2, parameters=10, gflops_per_sample=0.75, samples_per_s=8.0,
               latency_ms_median=500.0, latency_ms_p10=490.0, latency_ms_p90=510.0, achieved_gflops_per_s=6.0)
    row.update(kw)
    return row


def test_add_mfu_uses_the_ceiling_of_the_rows_precision() -> None:
    ceilings = {("cpu", "bf16"): _ceiling("bf16", 24.0), ("cpu", "fp32"): _ceiling("fp32", 12.0)}
    row = add_mfu(_row(), ceilings)
    # 0.75 GFLOPs/sample x 8 samples/s = 6 GFLOP/s, over the bf16 ceiling of 24 = 25 %
    assert row["mfu_pct"] == pytest.approx(25.0) and row["ceiling_gflops_per_s"] == 24.0
    assert row["ceiling_per_size"] == "n=1024: 12.0, n=2048: 24.0 GFLOP/s"
    assert add_mfu(_row(precision="fp32"), ceilings)["mfu_pct"] == pytest.approx(50.0)
    assert add_mfu(_row(precision="fp16"), ceilings)["mfu_pct"] is None  # no fp16 ceiling
    skipped = add_mfu(_row(status="skipped", achieved_gflops_per_s=None), ceilings)
    assert skipped["mfu_pct"] is None


def test_table_has_the_mfu_columns_the_ceiling_line_and_the_convention() -> None:
    rows = [add_mfu(_row(), {("cpu", "bf16"): _ceiling()}), _row(model="other", precision="fp32")]
    text = format_table(rows)
    lines = text.splitlines()
    assert "device: cpu (Test CPU, 2 threads)" in lines[0]
    assert "matmul ceiling bf16 on cpu: 24.0 GFLOP/s" in text and "n=2048: 24.0" in text
    header = next(line for line in lines if line.startswith("| model"))
    assert "| GFLOP/s" in header and "| MFU %" in header
    first = next(line for line in lines if line.startswith("| m "))
    assert "| 6.00 " in first and "| 25.00 " in first
    assert lines[-1] == MFU_CONVENTION and "not assumed 3x forward" in MFU_CONVENTION
    assert "matmul ceiling: not measured" in format_table([_row()])


def test_measure_ceilings_once_per_device_and_precision(monkeypatch) -> None:
    calls = []

    def fake(precision, device):
        calls.append((precision, str(device), torch.get_num_threads()))
        return _ceiling(precision, 10.0)

    monkeypatch.setattr(bench_module, "measure_matmul_ceiling", fake)
    threads = torch.get_num_threads()
    cells = [BenchCell(model="simlpe", model_args=(), mode=mode, batch_size=b, precision=p, device="cpu", threads=1)
             for b in (1, 2) for p in ("fp32", "bf16", "fp16") for mode in ("train", "infer")]
    log: list[str] = []
    ceilings = measure_ceilings(cells, log=log.append)
    assert calls == [("fp32", "cpu", 1), ("bf16", "cpu", 1)]  # with the cells' threads; no fp16 on CPU
    assert torch.get_num_threads() == threads
    assert set(ceilings) == {("cpu", "fp32"), ("cpu", "bf16")}
    assert len(log) == 3 and "fp16" in log[2] and "no MFU" in log[2]


def test_sweep_rows_carry_achieved_gflops_and_mfu() -> None:
    cell = BenchCell(model="stcformer", model_args=(("dim", 16), ("enc_blocks", 1), ("dec_blocks", 1)), mode="infer",
                     batch_size=2, warmup=1, iters=2, threads=1, device="cpu")
    (row,) = run_sweep([cell], ceilings={("cpu", "fp32"): _ceiling("fp32", 1000.0)})
    assert row["status"] == "ok", row["message"]
    assert row["achieved_gflops_per_s"] == pytest.approx(row["gflops_per_sample"] * row["samples_per_s"])
    assert row["mfu_pct"] == pytest.approx(100 * row["achieved_gflops_per_s"] / 1000.0)
    assert row["ceiling_gflops_per_s"] == 1000.0



def test_measure_ceilings_measures_each_precision_once_and_says_why_not() -> None:
    from crisscross.benchmarking.ceiling import measure_ceilings

    lines: list[str] = []
    assert measure_ceilings(["fp16", "fp16"], "cpu", report=lines.append) == {}
    assert len(lines) == 1 and lines[0].startswith("fp16: ") and "no MFU" in lines[0]
