"""``crisscross profile``: one training step split into phases (data, forward, loss, backward, optimizer)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from crisscross.benchmarking.profile import new_profile_dir, profile_training
from crisscross.cli.attention import load_source
from crisscross.runtime import capture_environment, configure_cpu_allocator, select_device
from crisscross.tasks import get_task

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "profile", help="time the phases of a training step with the PyTorch profiler; write a Chrome trace",
        description="Run warm-up steps, then profile --steps training steps of a run's model (or --model NAME) on its "
        "training data, exactly as the engine trains (batches gathered by index from the device-resident windows). "
        "Prints the mean CPU (and CUDA) time per phase and its share of the measured step wall time, and writes "
        "trace.json (chrome://tracing, ui.perfetto.dev), phases.csv and profile.json to a new folder "
        "profile-<time> under <run>/profiles or --out.")
    p.add_argument("source", nargs="?", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--model", help="registry model at random init, NAME[:key=value...], e.g. stcformer:dim=128")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="profiled steps, averaged (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="default: the run's (fp32 for --model)")
    p.add_argument("--device", default=None, help="default: the run's train.device (auto)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", metavar="DIR", help="parent of the new profile folder (default: <run>/profiles or "
                   "runs/profiles)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Profile and print the phase table."""
    if args.threads:
        torch.set_num_threads(args.threads)
    src = load_source(args.source, args.model, "cpu")
    cfg = src.cfg
    if args.precision:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=args.precision))
    device = select_device(args.device or cfg.train.device)
    configure_cpu_allocator()  # as the training engine does
    d, task = cfg.data, get_task(cfg.task)
    train_set = task.load_split(d, d.train_split)
    bank = task.sample_bank(train_set, d, device)  # the engine's batches: windows gathered by index
    if args.out:
        root = Path(args.out)
    else:
        root = src.run_dir / "profiles" if src.run_dir else Path(cfg.track.root) / "profiles"
    out_dir = new_profile_dir(root)
    meta = {"model": src.model_name, "checkpoint": str(src.checkpoint) if src.checkpoint else None,
            "dataset": d.dataset, "split": d.train_split, "environment": capture_environment(device)}
    result = profile_training(src.model.to(device), cfg, bank, device=device, batch_size=args.batch_size,
                              steps=args.steps, warmup=args.warmup, out_dir=out_dir, meta=meta)
    print(f"{src.label}: one training step, batch {args.batch_size}, {cfg.train.precision}, on {result.device} "
          f"({result.device_name}); mean of {result.steps} profiled steps after {result.warmup} warm-up steps")
    print(result.table())
    print(f"\nphases sum to {result.phase_sum_ms:.3f} ms of the {result.step_ms:.3f} ms measured step "
          f"(median {result.step_ms_median:.3f} ms)")
    print(f"wrote {result.trace_path} (open in chrome://tracing or ui.perfetto.dev), phases.csv, profile.json")
    return 0
