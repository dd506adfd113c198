"""Training throughput: the crisscross engine against the usual PyTorch loop, same model, data and batch size.

The "usual loop" is what research code in this field does (siMLPe, HRI, the course's STTFormer baseline):
a ``Dataset`` whose ``__getitem__`` slices one window out of a NumPy array, a ``DataLoader`` that collates
batches in Python, a host-to-device copy per batch, eager fp32, and ``loss.item()`` every step for logging.
The engine keeps every window on the device, gathers a batch with one indexing op, never synchronises
inside the step, and optionally compiles the model and the loss (``--compile``).

Both loops are timed in the same process on the same data, alternating in rounds so that a noisy machine
affects both alike; the table reports the median samples/s of the rounds and the ratio engine/usual.

    python benchmarks/bench_train_throughput.py                      # stcformer and simlpe, batch 256
    python benchmarks/bench_train_throughput.py --models simlpe --compile on --steps 30
"""

from __future__ import annotations

import os

# Inductor compiles in a pool of worker processes that stay alive and compete for the 2 cores with the timed
# loops; compile in-process so every variant is timed on the same, otherwise idle, CPU.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse
import statistics
import time

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset

from crisscross.config import load_config
from crisscross.data.datasets import load_motion
from crisscross.models.registry import count_parameters
from crisscross.runtime import capture_environment, select_device
from crisscross.training.batches import WindowBank, epoch_permutation
from crisscross.training.loop import build_model, train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import Precision


class SlicingDataset(Dataset):
    """The usual per-sample dataset: one NumPy slice and conversion per window."""

    def __init__(self, positions_mm: np.ndarray, starts: np.ndarray, window: int, predicted: list[int]) -> None:
        self.positions = positions_mm
        self.starts = starts
        self.window = window
        self.predicted = predicted

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = int(self.starts[i])
        clip = self.positions[s:s + self.window][:, self.predicted] / 1000.0
        return torch.from_numpy(clip.astype(np.float32))


def usual_loop(model, optimizer, loader, device, input_frames: int, steps: int) -> float:
    """``steps`` updates of the usual loop; returns the elapsed seconds (device synchronised)."""
    it = iter(loader)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = next(it).to(device)
        past, future = batch[:, :input_frames], batch[:, input_frames:]
        pred = model(past)
        loss = torch.linalg.vector_norm(pred - future, dim=-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _ = loss.item()  # per-step logging, as the reference code does
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def engine_loop(model, optimizer, scaler, precision, bank, cfg, device, steps: int, epoch: int) -> float:
    """``steps`` updates of the crisscross engine's step; returns the elapsed seconds (synchronised)."""
    perm = epoch_permutation(len(bank), cfg.seed, epoch, device)
    b = cfg.train.batch_size
    t0 = time.perf_counter()
    last = None
    for i in range(steps):
        batch = bank.batch(perm[i * b:(i + 1) * b], cfg.data.augment, None)
        last = train_step(model, optimizer, scaler, precision, batch, cfg.data.input_frames, cfg)
    if last is not None:
        float(last[0])  # one synchronisation at the end, as the engine logs every N steps
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def bench_model(name: str, args: argparse.Namespace, motion, device: torch.device) -> list[list]:
    """Rows of the table for one model."""
    cfg = load_config(None, [f"model.name={name}", f"train.batch_size={args.batch_size}",
                             f"train.precision={args.precision}", "optim.name=adam", "optim.lr=1e-4"])
    window = cfg.data.input_frames + cfg.data.output_frames
    skeleton = motion.skeleton
    starts = motion.train_windows(window).numpy()
    positions = motion.positions.numpy()

    def fresh_model():
        torch.manual_seed(0)
        return build_model(name, {}, skeleton, cfg.data.input_frames, cfg.data.output_frames).to(device)

    usual_model = fresh_model()
    usual_opt = create_optimizer(usual_model, cfg.optim)
    loader = DataLoader(SlicingDataset(positions, starts, window, list(skeleton.predicted)),
                        batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=0)

    bank = WindowBank.from_motion(motion, window, 1, device)
    precision = Precision(args.precision, device.type)
    variants = {}
    for compiled in args.compile:
        model = fresh_model()
        opt = create_optimizer(model, cfg.optim)
        runner = torch.compile(model) if compiled == "on" else model
        variants[compiled] = (runner, opt, precision.grad_scaler())

    # warm-up (compilation happens here)
    usual_loop(usual_model, usual_opt, loader, device, cfg.data.input_frames, args.warmup)
    for runner, opt, scaler in variants.values():
        engine_loop(runner, opt, scaler, precision, bank, cfg, device, args.warmup, epoch=0)

    usual_rates, engine_rates = [], {k: [] for k in variants}
    for r in range(args.rounds):
        usual_rates.append(args.steps * args.batch_size / usual_loop(usual_model, usual_opt, loader, device,
                                                                     cfg.data.input_frames, args.steps))
        for key, (runner, opt, scaler) in variants.items():
            dt = engine_loop(runner, opt, scaler, precision, bank, cfg, device, args.steps, epoch=r + 1)
            engine_rates[key].append(args.steps * args.batch_size / dt)
    usual = statistics.median(usual_rates)
    rows = []
    for key, rates in engine_rates.items():
        engine = statistics.median(rates)
        rows.append([name, f"{count_parameters(usual_model):,}", args.batch_size, args.precision, key,
                     f"{usual:,.0f}", f"{engine:,.0f}", f"{engine / usual:.2f}x"])
    return rows


def main() -> None:
    """Parse arguments, run every model, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="stcformer,simlpe")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="timed updates per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--compile", default="off,on", help="engine variants: off, on or off,on")
    p.add_argument("--device", default="auto")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-dir")
    args = p.parse_args()
    args.compile = [c.strip() for c in args.compile.split(",")]
    device = select_device(args.device)
    motion = load_motion(args.dataset, split="train", data_dir=args.data_dir)
    env = capture_environment(device)
    print(f"device {env['device']} ({env['device_name']}), torch {env['torch']}, {env['cpu_threads']} threads, "
          f"commit {env['git_commit']}")
    rows = []
    for name in args.models.split(","):
        rows += bench_model(name.strip(), args, motion, device)
    print(tabulate(rows, headers=["model", "params", "batch", "precision", "engine compile", "usual loop samples/s",
                                  "engine samples/s", "engine / usual"], tablefmt="github"))


if __name__ == "__main__":
    main()
