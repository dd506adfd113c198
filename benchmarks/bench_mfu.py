"""Model FLOP utilisation of one training step: the old layouts against the fast ones, in one process.

Times the engine's own training step (:func:`crisscross.training.loop.train_step` with the loss
:func:`crisscross.training.setup.engine_loss` gives it: forward under autocast and the configured attention kernel,
loss in fp32, backward, the fused optimizer update) on a fixed device-resident batch, as ``crisscross bench`` does,
for two variants of the same model:

* ``baseline``: the plain layouts of the explicit attention and the criss-cross layers, reached through
  ``crisscross.models.attention.fast_layouts(False)``;
* ``fast``: the default (``fast_layouts(True)``): the same numbers to float rounding, with the softmax of short
  score rows (fewer than 16 keys) computed in a layout PyTorch's CPU kernel vectorises, the causal mask filled in
  place, and the SPE depthwise convolutions fed channels-last input.

Each variant trains its own copy of the model from the same initial weights. The variants alternate in rounds, so a
busy machine slows both alike; the table gives the median step time, samples/s, the achieved GFLOP/s (training FLOPs
per step as ``FlopCounterMode`` counts them, multiply-add = 2), the MFU against the matmul ceiling of the precision
measured at the start of the same run (:mod:`crisscross.benchmarking.ceiling`), the ratio of each variant's speed to
the baseline's, the same two figures for each variant's fastest round, every round's step time, and the loss of each
variant's first step (equal to float rounding). The 1-minute load average is
printed at the start, after the ceilings and at the end: on a shared machine read the ratios, not single figures.

    python benchmarks/bench_mfu.py                                  # stcformer, batch 256, bf16, 10 -> 25 frames
    python benchmarks/bench_mfu.py --precisions fp32,bf16 --rounds 7
    python benchmarks/bench_mfu.py --model stcformer --batch-size 32 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch
from tabulate import tabulate

from crisscross.benchmarking.ceiling import measure_ceilings, mfu_pct
from crisscross.benchmarking.environment import device_name
from crisscross.benchmarking.flops import train_flops
from crisscross.config.schema import ExperimentConfig
from crisscross.data.skeleton import get_skeleton
from crisscross.models.attention import fast_layouts
from crisscross.models.registry import build_model, count_parameters
from crisscross.runtime import select_device
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import PRECISION_DTYPES, Precision
from crisscross.training.setup import engine_loss

VARIANTS = {"baseline": False, "fast": True}  # name -> fast_layouts(enabled)


def load_avg() -> str:
    """The 1-, 5- and 15-minute load averages, or ``n/a``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


class Variant:
    """One model copy, its optimizer and the engine's loss for a precision and a layout switch."""

    def __init__(self, name: str, fast: bool, precision: str, args: argparse.Namespace, device: torch.device,
                 batch: torch.Tensor) -> None:
        self.name, self.fast, self.precision = name, fast, precision
        cfg = ExperimentConfig()
        cfg = replace(cfg, data=replace(cfg.data, input_frames=args.input_frames, output_frames=args.output_frames),
                      train=replace(cfg.train, attention=args.attention))
        torch.manual_seed(args.seed)
        skeleton = get_skeleton("h36m")
        self.model = build_model(args.model, {}, skeleton, args.input_frames, args.output_frames).to(device)
        self.model.train()
        self.runner = torch.compile(self.model) if args.compile else self.model
        self.optimizer = create_optimizer(self.model, cfg.optim)
        prec = Precision(precision, device.type)
        self.scaler = prec.grad_scaler()
        self.loss_fn = engine_loss(cfg, prec, device.type)
        self.clip = cfg.optim.clip_grad_norm
        self.batch = batch
        self.first_loss: float | None = None
        self.times: list[float] = []

    def step(self) -> torch.Tensor:
        """One training step under this variant's layout switch; returns the detached loss terms."""
        with fast_layouts(self.fast):
            return train_step(self.runner, self.optimizer, self.scaler, self.batch, self.loss_fn, self.clip)

    def timed(self, steps: int) -> None:
        """Run ``steps`` steps and record the mean seconds per step (one synchronisation at the end)."""
        t0 = time.perf_counter()
        terms = None
        for _ in range(steps):
            terms = self.step()
        float(terms[0])
        self.times.append((time.perf_counter() - t0) / steps)


def main() -> None:
    """Parse arguments, alternate the variants, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="stcformer")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--input-frames", type=int, default=10)
    p.add_argument("--output-frames", type=int, default=25)
    p.add_argument("--precisions", default="bf16", help="comma-separated: fp32, bf16 (fp16 runs but has no CPU MFU)")
    p.add_argument("--variants", default="baseline,fast", help=f"comma-separated, from {', '.join(VARIANTS)}")
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

    joints = len(get_skeleton("h36m").predicted)
    gen = torch.Generator().manual_seed(args.seed)
    window = torch.randn(args.batch_size, args.input_frames + args.output_frames, joints, 3, generator=gen) * 0.3
    batch = window.to(device)
    runs = [Variant(name, VARIANTS[name], prec, args, device, batch) for prec in precisions for name in variants]
    flops = train_flops(runs[0].model, batch[:, :args.input_frames], batch[:, args.input_frames:])
    for run in runs:
        run.first_loss = float(run.step()[0])
        for _ in range(max(0, args.warmup - 1)):
            run.step()
    for _ in range(args.rounds):
        for run in runs:
            run.timed(args.steps)
    print(f"load average at the end: {load_avg()}")

    rows = []
    base = {run.precision: statistics.median(run.times) for run in runs if run.name == variants[0]}
    base_best = {run.precision: min(run.times) for run in runs if run.name == variants[0]}
    for run in runs:
        step_s, best_s = statistics.median(run.times), min(run.times)
        achieved = flops / step_s / 1e9
        ceiling = ceilings.get(run.precision)
        mfu = f"{mfu_pct(achieved, ceiling.ceiling_gflops_per_s):.1f}" if ceiling else ""
        best_mfu = f"{mfu_pct(flops / best_s / 1e9, ceiling.ceiling_gflops_per_s):.1f}" if ceiling else ""
        rows.append([run.name, run.precision, f"{step_s * 1e3:,.1f}", f"{args.batch_size / step_s:,.1f}",
                     f"{achieved:,.1f}", mfu, f"{base[run.precision] / step_s:.2f}x", best_mfu,
                     f"{base_best[run.precision] / best_s:.2f}x", f"{run.first_loss:.6f}",
                     " ".join(f"{t * 1e3:.0f}" for t in run.times)])
    print(f"{args.model}: {count_parameters(runs[0].model):,} parameters, {flops / 1e9:.2f} training GFLOPs per step "
          f"({flops / args.batch_size / 1e9:.4f} per sample)")
    print(tabulate(rows, headers=["variant", "precision", "step ms (median)", "samples/s", "GFLOP/s", "MFU %",
                                  f"speed vs {variants[0]}", "best-round MFU %", f"best-round speed vs {variants[0]}",
                                  "first-step loss", "round step ms"],
                   tablefmt="github"))
    print("GFLOP/s = counted training FLOPs per step (forward + backward, FlopCounterMode, multiply-add = 2; "
          "element-wise work and the optimizer uncounted) / median step time; MFU % = GFLOP/s / the matmul ceiling "
          "above of the variant's precision; best-round columns use each variant's fastest round (a round that "
          "another process slowed shows in 'round step ms')")


if __name__ == "__main__":
    main()
