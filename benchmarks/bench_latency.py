"""Latency of one prediction at batch 1 on one thread: eager PyTorch, ``torch.compile`` and ONNX Runtime.

Run::

    python benchmarks/bench_latency.py [--models stcformer,stcformer-lift] [--iters 300]
                                       [--runtimes eager,compile,onnx]

For each model (registry defaults, random weights: latency does not depend on them) the default forecaster sees
10 observed frames of the 22 predicted Human3.6M joints and predicts 25; the default lifter sees 27 frames of the
17 Human3.6M joints and returns the pose of every frame. Each runtime is timed on the same input after a warm-up,
the runtimes in alternation (one call each, round after round) so that load from other processes hits all alike.
Reported per runtime: p50 and p99 of the per-call wall time, predictions per second at p50, the p50 ratio against
eager PyTorch measured in the same run, and the largest output difference from eager. ONNX Runtime runs with one
intra-op and one inter-op thread; PyTorch with ``torch.set_num_threads(1)``. ``onnx`` needs the deploy extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

from crisscross.data.skeleton import get_skeleton
from crisscross.models.registry import build_model, get_model_entry
from crisscross.runs.onnx_export import export_module

RUNTIMES = ("eager", "compile", "onnx")


def _model_and_input(name: str) -> tuple[torch.nn.Module, torch.Tensor, str]:
    if get_model_entry(name).task == "lifting":
        skeleton, frames_in, frames_out = get_skeleton("h36m17"), 27, 27
        x = torch.randn(1, frames_in, 17, 2) * 0.3
    else:
        skeleton, frames_in, frames_out = get_skeleton("h36m"), 10, 25
        x = torch.randn(1, frames_in, len(skeleton.predicted), 3) * 0.3
    model = build_model(name, {}, skeleton, frames_in, frames_out).eval()
    return model, x, f"{frames_in} -> {frames_out} frames, {x.shape[2]} joints"


def _runner(runtime: str, model: torch.nn.Module, x: torch.Tensor, folder: Path) -> Callable[[], np.ndarray]:
    if runtime == "eager":
        def eager() -> np.ndarray:
            with torch.inference_mode():
                return model(x).numpy()
        return eager
    if runtime == "compile":
        compiled = torch.compile(model)

        def run_compiled() -> np.ndarray:
            with torch.inference_mode():
                return compiled(x).numpy()
        return run_compiled
    import onnxruntime as ort  # the deploy extra

    path = export_module(model, x.expand(2, *x.shape[1:]).contiguous(), folder / "model.onnx")  # dynamic batch
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)[0]


def measure(name: str, runtimes: list[str], iters: int, warmup: int) -> list[list]:
    """One table row per runtime: ``[model, runtime, p50 ms, p99 ms, predictions/s, vs eager, max diff]``."""
    model, x, shape = _model_and_input(name)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {r: _runner(r, model, x, Path(tmp)) for r in runtimes}
        reference = runners["eager"]() if "eager" in runners else None
        for run in runners.values():
            for _ in range(warmup):
                run()
        times: dict[str, list[float]] = {r: [] for r in runners}
        for _ in range(iters):
            for runtime, run in runners.items():
                t0 = time.perf_counter()
                run()
                times[runtime].append((time.perf_counter() - t0) * 1000)
        diffs = {r: float(np.abs(run() - reference).max()) if reference is not None else float("nan")
                 for r, run in runners.items()}
    p50 = {r: statistics.median(t) for r, t in times.items()}
    rows = []
    for runtime, t in times.items():
        ratio = p50["eager"] / p50[runtime] if "eager" in p50 else float("nan")
        rows.append([f"{name} ({shape})", runtime, f"{p50[runtime]:.2f}", f"{np.percentile(t, 99):.2f}",
                     f"{1000 / p50[runtime]:,.0f}", f"{ratio:.2f}x", f"{diffs[runtime]:.1e}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="stcformer,stcformer-lift")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"comma-separated from {', '.join(RUNTIMES)}")
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = sorted(set(runtimes) - set(RUNTIMES))
    if unknown:
        parser.error(f"--runtimes: unknown {', '.join(unknown)}; known: {', '.join(RUNTIMES)}")
    if "onnx" in runtimes and importlib.util.find_spec("onnxruntime") is None:
        print("onnx: skipped (onnxruntime is not installed: pip install 'crisscross[deploy]')")
        runtimes.remove("onnx")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = [row for name in args.models.split(",") for row in measure(name, runtimes, args.iters, args.warmup)]
    machine = platform.processor() or platform.machine()
    print(f"batch 1, 1 thread, {args.iters} calls per runtime after {args.warmup} warm-up; {machine}, "
          f"torch {torch.__version__}")
    print(tabulate(rows, headers=["model", "runtime", "p50 ms", "p99 ms", "predictions/s", "vs eager (p50)",
                                  "max diff vs eager"], tablefmt="github", disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
