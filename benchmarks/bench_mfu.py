"""Model FLOP utilisation of one training step: the old layouts and allocator against the engine's, in one run.

Times the engine's own training step (:func:`crisscross.training.loop.train_step` with the loss
:func:`crisscross.training.setup.engine_loss` gives it: forward under autocast and the configured attention kernel,
loss in fp32, backward, the fused optimizer update) on a fixed device-resident batch, as ``crisscross bench`` does,
for three variants of the same model:

* ``baseline``: the plain layouts of the explicit attention and the criss-cross layers, reached through
  ``crisscross.models.attention.fast_layouts(False)``, and glibc's default malloc settings;
* ``layouts``: the fast layouts (the default, ``fast_layouts(True)``): the same numbers to float rounding, with the
  softmax of short score rows (fewer than 16 keys) computed in a layout PyTorch's CPU kernel vectorises, masks added
  to the scores in place, the SPE depthwise convolutions fed channels-last input, the criss-cross queries scaled
  through the projection's weights, the projections' bias added inside the GEMM (oneDNN's linear), each pre-norm
  sub-layer's LayerNorm affine folded into its first projection and its residual added in its last projection's
  GEMM; glibc's default malloc settings;
* ``engine``: the fast layouts and the allocator setting the training engine makes
  (:func:`crisscross.runtime.configure_cpu_allocator`: freed tensor memory stays with the process instead of being
  unmapped and page-faulted in again at the next step). This is what ``crisscross train`` runs.

The allocator setting is process-wide, so each variant runs in its own worker process (the same seed, initial
weights and batch in each); the parent measures the matmul ceiling of each precision first
(:mod:`crisscross.benchmarking.ceiling`), then has the workers time their steps one after the other, in alternating
rounds, so a busy machine slows all alike, and measures the ceiling again once the workers are gone; MFU is against
the higher of the two readings (a reading another process depressed would inflate it). The table gives the median
step time, samples/s, the achieved GFLOP/s (training FLOPs per step as ``FlopCounterMode`` counts them, multiply-add
= 2), the MFU against the ceiling, the ratio of each variant's speed to the first variant's, the same two figures
for each variant's fastest round, every round's step time, each variant's first-step loss (equal to float rounding)
and its peak resident memory. The 1-minute load average is printed at the start, after the ceilings and at the end:
on a shared machine read the ratios, not single figures.

    python benchmarks/bench_mfu.py                                  # stcformer, batch 256, bf16, 10 -> 25 frames
    python benchmarks/bench_mfu.py --precisions fp32,bf16 --rounds 7
    python benchmarks/bench_mfu.py --model stcformer --batch-size 32 --threads 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection

import torch
from tabulate import tabulate

from crisscross.benchmarking.ceiling import measure_ceilings, mfu_pct
from crisscross.benchmarking.environment import device_name
from crisscross.benchmarking.flops import train_flops
from crisscross.config.schema import ExperimentConfig
from crisscross.data.skeleton import get_skeleton
from crisscross.models.attention import fast_layouts
from crisscross.models.registry import build_model, count_parameters
from crisscross.runtime import configure_cpu_allocator, select_device
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import PRECISION_DTYPES, Precision
from crisscross.training.setup import engine_loss


@dataclass(frozen=True)
class VariantSpec:
    """What differs between the variants: the layouts switch and the allocator setting."""

    fast_layouts: bool
    engine_allocator: bool


VARIANTS = {
    "baseline": VariantSpec(fast_layouts=False, engine_allocator=False),
    "layouts": VariantSpec(fast_layouts=True, engine_allocator=False),
    "engine": VariantSpec(fast_layouts=True, engine_allocator=True),
}


def load_avg() -> str:
    """The 1-, 5- and 15-minute load averages, or ``n/a``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def make_batch(args: argparse.Namespace, device: torch.device) -> torch.Tensor:
    """The fixed batch of windows ``[B, T_in + T_out, J, 3]`` every variant trains on."""
    joints = len(get_skeleton("h36m").predicted)
    gen = torch.Generator().manual_seed(args.seed)
    window = torch.randn(args.batch_size, args.input_frames + args.output_frames, joints, 3, generator=gen) * 0.3
    return window.to(device)


def build(args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    """The model of ``--model`` from the seed's initial weights, in training mode."""
    torch.manual_seed(args.seed)
    model = build_model(args.model, {}, get_skeleton("h36m"), args.input_frames, args.output_frames).to(device)
    return model.train()


class Variant:
    """One model copy, its optimizer and the engine's loss for a precision and a layout switch."""

    def __init__(self, spec: VariantSpec, precision: str, args: argparse.Namespace, device: torch.device) -> None:
        self.spec = spec
        cfg = ExperimentConfig()
        cfg = replace(cfg, data=replace(cfg.data, input_frames=args.input_frames, output_frames=args.output_frames),
                      train=replace(cfg.train, attention=args.attention))
        self.model = build(args, device)
        self.runner = torch.compile(self.model) if args.compile else self.model
        self.optimizer = create_optimizer(self.model, cfg.optim)
        prec = Precision(precision, device.type)
        self.scaler = prec.grad_scaler()
        self.loss_fn = engine_loss(cfg, prec, device.type)
        self.clip = cfg.optim.clip_grad_norm
        self.batch = make_batch(args, device)

    def step(self) -> torch.Tensor:
        """One training step under this variant's layout switch; returns the detached loss terms."""
        with fast_layouts(self.spec.fast_layouts):
            return train_step(self.runner, self.optimizer, self.scaler, self.batch, self.loss_fn, self.clip)

    def timed(self, steps: int) -> float:
        """Run ``steps`` steps; the mean seconds per step (one synchronisation at the end)."""
        t0 = time.perf_counter()
        terms = None
        for _ in range(steps):
            terms = self.step()
        float(terms[0])
        return (time.perf_counter() - t0) / steps


def worker(conn: Connection, name: str, precision: str, args: argparse.Namespace) -> None:
    """One variant in its own process: on request build and warm up (reporting the first loss), then time steps."""
    if conn.recv() is None:  # the parent's turn to this worker (warm-ups run one at a time), or its end
        return
    spec = VARIANTS[name]
    allocator = configure_cpu_allocator() if spec.engine_allocator else "default"  # as crisscross train would
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    run = Variant(spec, precision, args, device)
    first_loss = float(run.step()[0])
    for _ in range(max(0, args.warmup - 1)):
        run.step()
    conn.send((first_loss, allocator))
    while (steps := conn.recv()) is not None:
        seconds = run.timed(steps)
        conn.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    """Parse arguments, start one worker per variant and precision, alternate them, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="stcformer")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--input-frames", type=int, default=10)
    p.add_argument("--output-frames", type=int, default=25)
    p.add_argument("--precisions", default="bf16", help="comma-separated: fp32, bf16 (fp16 runs but has no CPU MFU)")
    p.add_argument("--variants", default="baseline,layouts,engine",
                   help=f"comma-separated, from {', '.join(VARIANTS)}; ratios are against the first")
    p.add_argument("--attention", default="auto", help="train.attention for every variant (auto = explicit on CPU)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (median reported)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    p.add_argument("--compile", action="store_true", help="torch.compile every variant's model")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    variants = [s.strip() for s in args.variants.split(",") if s.strip()]
    for prec in precisions:
        if prec not in PRECISION_DTYPES:
            p.error(f"--precisions: unknown {prec!r}; choose from {', '.join(PRECISION_DTYPES)}")
    for name in variants:
        if name not in VARIANTS:
            p.error(f"--variants: unknown {name!r}; choose from {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    print(f"device {device} ({device_name(device)}), torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"model {args.model}, batch {args.batch_size}, {args.input_frames} -> {args.output_frames} frames; "
          f"load average {load_avg()}")

    ceilings = measure_ceilings(precisions, device)
    print(f"load average after the ceilings: {load_avg()}")
    model = build(args, device)
    batch = make_batch(args, device)
    flops = train_flops(model, batch[:, :args.input_frames], batch[:, args.input_frames:])
    parameters = count_parameters(model)
    del model, batch

    ctx = mp.get_context("spawn")  # fresh processes: each variant's allocator state is its own
    runs = []
    for prec in precisions:
        for name in variants:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, name, prec, args), daemon=True)
            proc.start()
            runs.append({"name": name, "precision": prec, "conn": parent, "proc": proc, "times": [], "rss_kib": 0})
    try:
        for run in runs:  # the workers warm up one after the other, not all at once
            run["conn"].send("warm up")
            run["first_loss"], run["allocator"] = run["conn"].recv()
        for _ in range(args.rounds):
            for run in runs:
                run["conn"].send(args.steps)
                seconds, rss_kib = run["conn"].recv()
                run["times"].append(seconds)
                run["rss_kib"] = max(run["rss_kib"], rss_kib)
    finally:
        for run in runs:
            if run["proc"].is_alive():
                run["conn"].send(None)
            run["proc"].join(timeout=60)
    print(f"load average at the end: {load_avg()}")
    # The ceiling again, with the workers gone: a reading that another process depressed would inflate every MFU, so
    # each precision's MFU uses the higher of its two readings.
    end_ceilings = measure_ceilings(precisions, device, report=lambda line: print(f"at the end: {line}"))
    for prec, start in list(ceilings.items()):
        end = end_ceilings.get(prec, start)
        ceilings[prec] = max(start, end, key=lambda c: c.ceiling_gflops_per_s)
        print(f"{prec} MFU against {ceilings[prec].ceiling_gflops_per_s:.1f} GFLOP/s, the higher of "
              f"{start.ceiling_gflops_per_s:.1f} (start) and {end.ceiling_gflops_per_s:.1f} (end)")

    rows = []
    base = {run["precision"]: statistics.median(run["times"]) for run in runs if run["name"] == variants[0]}
    base_best = {run["precision"]: min(run["times"]) for run in runs if run["name"] == variants[0]}
    for run in runs:
        step_s, best_s = statistics.median(run["times"]), min(run["times"])
        achieved = flops / step_s / 1e9
        ceiling = ceilings.get(run["precision"])
        mfu = f"{mfu_pct(achieved, ceiling.ceiling_gflops_per_s):.1f}" if ceiling else ""
        best_mfu = f"{mfu_pct(flops / best_s / 1e9, ceiling.ceiling_gflops_per_s):.1f}" if ceiling else ""
        rows.append([run["name"], run["precision"], f"{step_s * 1e3:,.1f}", f"{args.batch_size / step_s:,.1f}",
                     f"{achieved:,.1f}", mfu, f"{base[run['precision']] / step_s:.2f}x", best_mfu,
                     f"{base_best[run['precision']] / best_s:.2f}x", f"{run['first_loss']:.6f}",
                     f"{run['rss_kib'] / 2**20:.2f}", " ".join(f"{t * 1e3:.0f}" for t in run["times"])])
    print(f"{args.model}: {parameters:,} parameters, {flops / 1e9:.2f} training GFLOPs per step "
          f"({flops / args.batch_size / 1e9:.4f} per sample)")
    for run in runs:
        print(f"{run['name']} ({run['precision']}): allocator {run['allocator']}")
    print(tabulate(rows, headers=["variant", "precision", "step ms (median)", "samples/s", "GFLOP/s", "MFU %",
                                  f"speed vs {variants[0]}", "best-round MFU %", f"best-round speed vs {variants[0]}",
                                  "first-step loss", "peak RSS GiB", "round step ms"],
                   tablefmt="github"))
    print("GFLOP/s = counted training FLOPs per step (forward + backward, FlopCounterMode, multiply-add = 2; "
          "element-wise work and the optimizer uncounted) / median step time; MFU % = GFLOP/s / the higher matmul "
          "ceiling reading above of the variant's precision; best-round columns use each variant's fastest round "
          "(a round that another process slowed shows in 'round step ms'); peak RSS = the worker process's maximum "
          "resident memory")


if __name__ == "__main__":
    main()
