"""The machine's dense matmul ceiling, measured, and model FLOP utilisation (MFU) against it.

MFU is a model's achieved FLOP rate over what the hardware can do (Chowdhery et al. 2022, "PaLM", appendix B;
nanoGPT's ``estimate_mfu``). Those divide by a datasheet peak. Here the denominator is measured instead, because
there is no datasheet figure for "2 cores of a shared cloud CPU under this PyTorch build": the best sustained
GFLOP/s of square ``torch.mm`` products in the precision's dtype (fp32, bf16, fp16), on the same device, in the same
process and with the same thread count as the models. It is an achievable ceiling, not a theoretical peak, so MFU
against it reads higher than against a datasheet peak, and 100 % means "as fast as the best plain GEMM here".

Measurement: for each size ``n`` a few untimed products first (library initialisation, cuBLAS handles, oneDNN
kernels), then ``timeit``-style auto-ranging (double the products per run until a run lasts ``min_run_s``), then
``repeats`` timed runs of that many products, each bracketed by ``torch.cuda.synchronize`` on CUDA. A product is
``2 * n**3`` FLOPs (one multiply-add = 2 FLOPs, as :mod:`crisscross.benchmarking.flops` counts the models). The
fastest run gives the size's GFLOP/s; the ceiling is the best size. On fp32 CUDA the product runs with whatever
``torch.backends.cuda.matmul.allow_tf32`` says at the time, as the models do (recorded in ``tf32``).

fp16 on CPU is not measured: PyTorch has no fast fp16 GEMM on most CPUs (about 1 GFLOP/s at ``n = 1024`` on a
2-core AMD EPYC, against 170 in fp32, so one ``n = 2048`` product takes tens of seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from crisscross.benchmarking.environment import device_name
from crisscross.benchmarking.timing import synchronize
from crisscross.training.precision import PRECISION_DTYPES

__all__ = [
    "DEFAULT_SIZES",
    "MatmulCeiling",
    "achieved_gflops_per_s",
    "ceiling_unsupported",
    "matmul_flops",
    "measure_ceilings",
    "measure_matmul_ceiling",
    "mfu_pct",
]

#: Square GEMM sizes per device type: a few seconds on 2 CPU cores; large enough to saturate a data-centre GPU.
DEFAULT_SIZES: dict[str, tuple[int, ...]] = {"cpu": (1024, 2048), "cuda": (1024, 2048, 4096, 8192)}
_MAX_ITERS = 1 << 20


@dataclass(frozen=True)
class MatmulCeiling:
    """A measured dense matmul ceiling (see module doc).

    Attributes:
        precision: ``fp32``, ``bf16`` or ``fp16``; ``dtype`` is its torch dtype as text.
        device: e.g. ``cpu``, ``cuda:0``; ``device_name`` the CPU model or GPU name.
        threads: ``torch.get_num_threads()`` during the measurement (matters on CPU).
        tf32: TF32 matmuls were allowed (fp32 on CUDA only; False otherwise).
        sizes: the square sizes ``n`` measured.
        gflops_per_s: the best GFLOP/s of each size, in the order of ``sizes``.
        ceiling_gflops_per_s: the largest of ``gflops_per_s``.
    """

    precision: str
    dtype: str
    device: str
    device_name: str
    threads: int
    tf32: bool
    sizes: tuple[int, ...]
    gflops_per_s: tuple[float, ...]
    ceiling_gflops_per_s: float

    def per_size(self) -> str:
        """``"n=1024: 169.4, n=2048: 176.2 GFLOP/s"``."""
        return ", ".join(f"n={n}: {g:,.1f}" for n, g in zip(self.sizes, self.gflops_per_s)) + " GFLOP/s"

    def describe(self) -> str:
        """One line: precision, ceiling, device, threads and the per-size figures."""
        tf32 = ", TF32 allowed" if self.tf32 else ""
        return (f"{self.precision} matmul ceiling {self.ceiling_gflops_per_s:,.1f} GFLOP/s on {self.device} "
                f"({self.device_name}, {self.threads} threads{tf32}; best square GEMM of {self.per_size()})")


def matmul_flops(n: int) -> int:
    """FLOPs of one ``[n, n] @ [n, n]`` product: ``n**2`` outputs of ``n`` multiply-adds, 2 FLOPs each."""
    return 2 * n**3


def ceiling_unsupported(precision: str, device: torch.device | str) -> str | None:
    """Why the ceiling of ``precision`` on ``device`` is not measured, or None when it is.

    Args:
        precision: ``fp32``, ``bf16`` or ``fp16``.
        device: where the models run.

    Returns:
        A one-line reason (unknown precision, no fast fp16 GEMM on CPU, no bf16 on this GPU), else None.
    """
    device = torch.device(device)
    if precision not in PRECISION_DTYPES:
        return f"unknown precision {precision!r}; choose from {', '.join(PRECISION_DTYPES)}"
    if precision == "fp16" and device.type == "cpu":
        return "no fp16 ceiling on CPU (PyTorch has no fast fp16 GEMM there)"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return f"bf16 is not supported on {device_name(device)}"
    return None


def _timed_run(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, iters: int, device: torch.device,
               timer: Callable[[], float]) -> float:
    """Seconds for ``iters`` products ``a @ b`` (CUDA synchronised before and after)."""
    synchronize(device)
    t0 = timer()
    for _ in range(iters):
        torch.mm(a, b, out=out)
    synchronize(device)
    return timer() - t0


def _best_gflops(n: int, dtype: torch.dtype, device: torch.device, warmup: int, repeats: int, min_run_s: float,
                 timer: Callable[[], float]) -> float:
    """Best GFLOP/s of ``n x n`` products: warm-up, auto-range to ``min_run_s``, then the fastest of ``repeats``."""
    gen = torch.Generator(device=device).manual_seed(n)
    a = torch.randn(n, n, generator=gen, device=device).to(dtype)
    b = torch.randn(n, n, generator=gen, device=device).to(dtype)
    out = torch.empty(n, n, dtype=dtype, device=device)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    iters = 1
    seconds = _timed_run(a, b, out, iters, device, timer)
    while seconds < min_run_s and iters < _MAX_ITERS:
        iters *= 2
        seconds = _timed_run(a, b, out, iters, device, timer)
    best = min([seconds] + [_timed_run(a, b, out, iters, device, timer) for _ in range(repeats - 1)])
    if not best > 0:
        raise RuntimeError(f"timer measured {best} s for {iters} products of n={n}; cannot compute a rate")
    return matmul_flops(n) * iters / best / 1e9


def measure_matmul_ceiling(precision: str, device: torch.device | str, sizes: Sequence[int] | None = None, *,
                           warmup: int = 1, repeats: int = 3, min_run_s: float = 0.1,
                           timer: Callable[[], float] = time.perf_counter) -> MatmulCeiling:
    """Measure the dense matmul ceiling of ``precision`` on ``device`` in this process (see module doc).

    Uses the current ``torch.get_num_threads()`` and TF32 setting; changes no global state except the caching
    allocator's pools on CUDA. Takes a few seconds on 2 CPU cores with the default sizes.

    Args:
        precision: ``fp32``, ``bf16`` or ``fp16`` (the product runs in that dtype, as autocast runs the models').
        device: where to measure, e.g. ``cpu`` or ``cuda:0``.
        sizes: square sizes ``n``; default :data:`DEFAULT_SIZES` of the device type.
        warmup: untimed products per size first (>= 0).
        repeats: timed runs per size (>= 1); the fastest counts. The run that fixed the product count is the first.
        min_run_s: shortest timed run, seconds; products per run double until a run lasts this long.
        timer: a monotonic clock in seconds (tests pass a fake one).

    Returns:
        The ceiling, its per-size figures and the conditions of the measurement.

    Raises:
        ValueError: a precision :func:`ceiling_unsupported` refuses, or bad sizes / counts.
    """
    device = torch.device(device)
    reason = ceiling_unsupported(precision, device)
    if reason is not None:
        raise ValueError(reason)
    sizes = tuple(int(n) for n in (sizes if sizes is not None else DEFAULT_SIZES.get(device.type, (1024, 2048))))
    if not sizes or any(n < 1 for n in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    if warmup < 0 or repeats < 1 or min_run_s < 0:
        raise ValueError(f"need warmup >= 0, repeats >= 1 and min_run_s >= 0, got {warmup}, {repeats}, {min_run_s}")
    dtype = PRECISION_DTYPES[precision]
    rates = tuple(_best_gflops(n, dtype, device, warmup, repeats, min_run_s, timer) for n in sizes)
    tf32 = device.type == "cuda" and dtype == torch.float32 and bool(torch.backends.cuda.matmul.allow_tf32)
    return MatmulCeiling(precision=precision, dtype=str(dtype), device=str(device), device_name=device_name(device),
                         threads=torch.get_num_threads(), tf32=tf32, sizes=sizes, gflops_per_s=rates,
                         ceiling_gflops_per_s=max(rates))


def achieved_gflops_per_s(flops_per_step: float, step_s: float) -> float:
    """GFLOP/s of a step that does ``flops_per_step`` counted FLOPs in ``step_s`` seconds."""
    if not step_s > 0:
        raise ValueError(f"step time must be positive, got {step_s}")
    return flops_per_step / step_s / 1e9


def mfu_pct(achieved: float, ceiling: float) -> float:
    """Model FLOP utilisation in percent: ``100 * achieved / ceiling`` (both GFLOP/s)."""
    if not (ceiling > 0 and math.isfinite(ceiling)):
        raise ValueError(f"ceiling must be a positive finite GFLOP/s, got {ceiling}")
    return 100.0 * achieved / ceiling


def measure_ceilings(precisions: Sequence[str], device: torch.device | str,
                     report: Callable[[str], None] = print) -> dict[str, MatmulCeiling]:
    """The matmul ceiling of each precision on ``device``, once each, in order; for the benchmark scripts.

    Args:
        precisions: precision names (repeats are measured once).
        device: where to measure.
        report: gets one line per precision: the ceiling (:meth:`MatmulCeiling.describe`), or why there is none.

    Returns:
        ``{precision: ceiling}`` for the precisions :func:`ceiling_unsupported` allows on ``device``.
    """
    ceilings = {}
    for prec in dict.fromkeys(precisions):
        reason = ceiling_unsupported(prec, device)
        if reason is not None:
            report(f"{prec}: {reason}; no MFU for it")
            continue
        ceilings[prec] = measure_matmul_ceiling(prec, device)
        report(ceilings[prec].describe())
    return ceilings
