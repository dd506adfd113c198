"""Time 25-step autoregressive decoding of ``stcformer-ar`` with and without the key/value cache.

Run::

    python benchmarks/bench_kv_cache.py [--batch 256] [--repeats 5] [--threads N] [--model NAME]

Both paths encode the observed frames and project the cross-attention memory once. Uncached decoding
re-runs the whole decoder over all frames decoded so far at every step (O(T^2) token work); cached
decoding processes one frame per step against cached temporal keys/values (O(T)). ``--model stcformer``
times the one-shot model's frame-by-frame ``decode_stepwise`` instead.

The two paths are timed in alternation (uncached, cached, uncached, ...) after a warm-up, so that load from
other processes on a shared machine hits both alike. Reported: median and p10/p90 wall time, process CPU
time (all threads; insensitive to waiting for a busy core), sequences/s, the median of the per-repeat
wall-time ratios, and the max difference between the two outputs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from tabulate import tabulate

from crisscross.models import count_parameters, create_model


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def main() -> None:
    """Parse arguments, time both decoding paths, print a table and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stcformer-ar", help="stcformer-ar, or a one-shot stcformer variant")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--joints", type=int, default=22)
    parser.add_argument("--input-frames", type=int, default=10)
    parser.add_argument("--output-frames", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = create_model(args.model, num_joints=args.joints, input_frames=args.input_frames,
                         output_frames=args.output_frames).eval()
    past = torch.randn(args.batch, args.input_frames, args.joints, 3) * 0.3
    # stcformer-ar decodes autoregressively; the one-shot stcformer can be decoded frame by frame too.
    decode = getattr(model, "decode", None) or model.decode_stepwise
    paths = {"uncached": False, "cached": True}
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    with torch.inference_mode():
        outputs = {k: decode(past, use_cache=c) for k, c in paths.items()}
        for _ in range(args.warmup):
            for use_cache in paths.values():
                decode(past, use_cache=use_cache)
        for _ in range(args.repeats):
            for key, use_cache in paths.items():
                w, c = _timed(lambda use_cache=use_cache: decode(past, use_cache=use_cache))
                wall[key].append(w)
                cpu[key].append(c)
    rows = []
    for key in paths:
        median = statistics.median(wall[key])
        rows.append([key, f"{median * 1e3:.0f}", f"{_quantile(wall[key], 0.1) * 1e3:.0f}",
                     f"{_quantile(wall[key], 0.9) * 1e3:.0f}", f"{statistics.median(cpu[key]) * 1e3:.0f}",
                     f"{args.batch / median:.0f}"])
    ratios = [u / c for u, c in zip(wall["uncached"], wall["cached"])]
    cpu_ratio = statistics.median(cpu["uncached"]) / statistics.median(cpu["cached"])
    max_diff = (outputs["cached"] - outputs["uncached"]).abs().max().item()
    print(f"{args.model} ({count_parameters(model):,} params), batch {args.batch}, {args.joints} joints, "
          f"{args.input_frames} -> {args.output_frames} frames, fp32, CPU ({platform.machine()}, "
          f"{torch.get_num_threads()} threads), torch {torch.__version__}, {args.repeats} repeats")
    print(tabulate(rows, headers=["decoding", "median ms", "p10 ms", "p90 ms", "CPU ms", "sequences/s"],
                   tablefmt="github"))
    print(f"speed-up: {statistics.median(ratios):.1f}x wall (median of per-repeat ratios, range "
          f"{min(ratios):.1f}-{max(ratios):.1f}), {cpu_ratio:.1f}x CPU time; "
          f"max |cached - uncached| = {max_diff:.1e} m")


if __name__ == "__main__":
    main()
