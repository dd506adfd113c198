"""Training throughput: the crisscross engine against the usual PyTorch loop, same model, data, recipe and batch.

The "usual loop" is what research code in this field does; it follows the published siMLPe training script
(``exps/baseline_h36m/train.py`` and ``lib/datasets/h36m.py``): a ``Dataset`` whose ``__getitem__`` slices one
window out of the motion, augments it with a coin flip and converts it to metres; a ``DataLoader`` with worker
processes (``--workers``) that collates the batch in Python; a host-to-device copy per batch; eager fp32 with
PyTorch's default attention kernel and optimizer implementation (``optim.fused=false``: a loop over the parameter
tensors on CPU); ``loss.item()`` and TensorBoard scalars (loss, learning rate) every step.

The engine keeps every window on the device, gathers a batch with one indexing op and augments it there,
never synchronises inside the step, updates with PyTorch's fused optimizer kernel (``optim.fused``, the
default), uses the attention kernel ``train.attention`` resolves to, and runs each
``--engine`` variant: a precision (fp32, bf16, fp16) and optionally ``+compile``.

Models, frame counts, loss (position + velocity term), augmentation and optimizer come from the shipped training
configs (``--configs``), so "equal model" means the model users train. Both loops run in one process on the same
data, alternating in rounds so that a noisy machine affects both alike; the table reports the median samples/s
of the rounds and the ratio engine / usual loop. Both run under glibc's default malloc settings: the engine's CPU
allocator setting (``crisscross.runtime.configure_cpu_allocator``) is process-wide, so it would speed up the usual
loop too; ``benchmarks/bench_mfu.py`` measures it in separate processes.

Each row also gives the achieved GFLOP/s and the model FLOP utilisation (MFU) of both loops: the model's training
FLOPs per sample (forward + backward as ``FlopCounterMode`` counts them, the same for both loops) times samples/s,
over the dense matmul ceiling of the loop's precision (fp32 for the usual loop, the variant's for the engine)
measured at the start of the same run (``crisscross.benchmarking.ceiling``). There is no fp16 ceiling on CPU, so
fp16 variants there get no MFU.

    python benchmarks/bench_train_throughput.py                                  # both configs, synthetic data
    python benchmarks/bench_train_throughput.py --dataset h36m --data-dir DATA_DIR
    python benchmarks/bench_train_throughput.py --configs configs/forecast/h36m_simlpe.yaml --engine bf16+compile
    python benchmarks/bench_train_throughput.py --engine bf16 --attention explicit,math,flash   # kernels compared
"""

from __future__ import annotations

import os

# Inductor compiles in a pool of worker processes that stay alive and compete for the cores with the timed
# loops; compile in-process so every variant is timed on the same, otherwise idle, CPU.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import argparse
import itertools
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset

from crisscross.benchmarking.ceiling import (
    MatmulCeiling,
    achieved_gflops_per_s,
    measure_ceilings,
    mfu_pct,
)
from crisscross.benchmarking.environment import device_name
from crisscross.benchmarking.flops import train_flops
from crisscross.config import load_config
from crisscross.data.augment import mirror, reverse_time, rotate_vertical
from crisscross.data.datasets import load_motion
from crisscross.models.registry import build_model, count_parameters
from crisscross.runtime import capture_environment, select_device
from crisscross.tasks.forecasting.losses import position_loss, velocity_loss
from crisscross.tasks.forecasting.windows import MM_PER_M, WindowBank
from crisscross.training.attention_backend import resolve_attention_backend
from crisscross.training.batches import epoch_permutation
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import PRECISION_DTYPES, Precision
from crisscross.training.setup import LossFn, engine_loss

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = "configs/forecast/h36m_stcformer.yaml,configs/forecast/h36m_simlpe.yaml"


class SlicingDataset(Dataset):
    """The usual per-sample dataset: slice one window, augment it by coin flips, select joints, metres."""

    def __init__(self, bank: WindowBank, augment) -> None:
        self.positions = bank.positions.cpu()
        self.starts = bank.starts.cpu().tolist()
        self.window = bank.window
        self.predicted = bank.predicted.cpu()
        self.mirror_perm = bank.mirror_perm.cpu() if bank.mirror_perm is not None else None
        self.vertical_axis, self.lateral_axis = bank.vertical_axis, bank.lateral_axis
        self.augment = augment

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> torch.Tensor:
        s = self.starts[i]
        clip = self.positions[s:s + self.window][None]  # [1, T, J_full, 3]
        if self.augment.rotate:
            clip = rotate_vertical(clip, float(torch.rand(1)) * 2 * torch.pi, self.vertical_axis)
        if self.augment.mirror and torch.rand(1)[0] > 0.5:
            clip = mirror(clip, self.mirror_perm, self.lateral_axis)
        if self.augment.reverse and torch.rand(1)[0] > 0.5:
            clip = reverse_time(clip)
        return (clip[0][:, self.predicted] / MM_PER_M).float()


def usual_loop(model, optimizer, batches, device, cfg, writer, steps: int, step0: int) -> float:
    """``steps`` updates of the usual loop; returns the elapsed seconds (device synchronised)."""
    t_in, w = cfg.data.input_frames, cfg.train.velocity_loss_weight
    t0 = time.perf_counter()
    for step in range(step0, step0 + steps):
        batch = next(batches).to(device, non_blocking=True)
        past, future = batch[:, :t_in], batch[:, t_in:]
        pred = model(past)
        loss = position_loss(cfg.train.loss, pred, future)
        if w > 0:
            loss = loss + w * velocity_loss(pred, future, past[:, -1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        writer.add_scalar("Loss/train", loss.detach().cpu().numpy(), step)  # as the published script logs
        writer.add_scalar("LR/train", optimizer.param_groups[0]["lr"], step)
        _ = loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def engine_loop(model, optimizer, scaler, loss_fn: LossFn, bank, cfg, device, steps: int, epoch: int) -> float:
    """``steps`` updates of the crisscross engine's step with its loss ``loss_fn``; returns the elapsed seconds
    (synchronised)."""
    perm = epoch_permutation(len(bank), cfg.seed, epoch, device)
    b = cfg.train.batch_size
    t0 = time.perf_counter()
    last = None
    for i in range(steps):
        batch = bank.batch(perm[i * b:(i + 1) * b], cfg.data.augment, None)
        last = train_step(model, optimizer, scaler, batch, loss_fn, cfg.optim.clip_grad_norm)
    if last is not None:
        float(last[0])  # one synchronisation at the end, as the engine logs every N steps
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def throughput_columns(samples_per_s: float, flops_per_sample: float, ceiling: MatmulCeiling | None) -> list[str]:
    """``[GFLOP/s, MFU %]`` cells of a loop running at ``samples_per_s`` (MFU empty without a ceiling)."""
    achieved = achieved_gflops_per_s(flops_per_sample, 1.0 / samples_per_s)
    mfu = f"{mfu_pct(achieved, ceiling.ceiling_gflops_per_s):.2f}" if ceiling is not None else ""
    return [f"{achieved:,.2f}", mfu]



def bench_config(path: str, args: argparse.Namespace, device: torch.device,
                 ceilings: dict[str, MatmulCeiling]) -> list[list]:
    """Rows of the table for one training config."""
    cfg = load_config(REPO / path if not Path(path).is_absolute() else path,
                      [f"data.dataset={args.dataset}", f"train.batch_size={args.batch_size}",
                       *([f"data.data_dir={args.data_dir}"] if args.data_dir else [])])
    d = cfg.data
    motion = load_motion(d.dataset, split=d.train_split, data_dir=d.data_dir, actions=d.actions)
    bank = WindowBank.from_motion(motion, d.input_frames + d.output_frames, 1, device)

    def fresh_model():
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model.name, cfg.model.args, motion.skeleton, d.input_frames,
                           d.output_frames).to(device)

    usual_model = fresh_model()
    usual_opt = create_optimizer(usual_model, replace(cfg.optim, fused=False))  # as published scripts build it
    loader = DataLoader(SlicingDataset(bank, d.augment), batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0,
                        pin_memory=device.type == "cuda")
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epochs back to back
    writer_dir = tempfile.TemporaryDirectory(prefix="bench-usual-tb-")
    from torch.utils.tensorboard import SummaryWriter  # lazy: the optional tensorboard package, this loop only

    writer = SummaryWriter(writer_dir.name)
    idx = torch.arange(args.batch_size, device=device) % len(bank)
    sample = bank.batch(idx, d.augment, None)
    flops_per_sample = train_flops(fresh_model(), sample[:, :d.input_frames], sample[:, d.input_frames:]) / len(idx)

    variants = {}
    for (spec, prec, compiled), kernel in itertools.product(args.engine, args.attention):
        model = fresh_model()
        opt = create_optimizer(model, cfg.optim)
        runner = torch.compile(model) if compiled else model
        precision = Precision(prec, device.type)
        kernel_cfg = replace(cfg, train=replace(cfg.train, attention=kernel))
        loss_fn = engine_loss(kernel_cfg, precision, device.type)
        variants[(spec, kernel)] = (runner, opt, precision.grad_scaler(), loss_fn, kernel_cfg)

    step = 0
    usual_loop(usual_model, usual_opt, batches, device, cfg, writer, args.warmup, step)
    step += args.warmup
    for runner, opt, scaler, loss_fn, kernel_cfg in variants.values():  # compilation happens here
        engine_loop(runner, opt, scaler, loss_fn, bank, kernel_cfg, device, args.warmup, epoch=0)

    usual_rates, engine_rates = [], {k: [] for k in variants}
    for r in range(args.rounds):
        dt = usual_loop(usual_model, usual_opt, batches, device, cfg, writer, args.steps, step)
        step += args.steps
        usual_rates.append(args.steps * args.batch_size / dt)
        for key, (runner, opt, scaler, loss_fn, kernel_cfg) in variants.items():
            dt = engine_loop(runner, opt, scaler, loss_fn, bank, kernel_cfg, device, args.steps, epoch=r + 1)
            engine_rates[key].append(args.steps * args.batch_size / dt)
    writer.close()
    writer_dir.cleanup()

    usual = statistics.median(usual_rates)
    frames = f"{d.input_frames}->{d.output_frames}"
    rows = []
    precisions = {spec: prec for spec, prec, _ in args.engine}
    for (spec, kernel), rates in engine_rates.items():
        engine = statistics.median(rates)
        attention = resolve_attention_backend(kernel, device.type)
        rows.append([cfg.model.name, f"{count_parameters(usual_model):,}", frames, args.batch_size, f"{usual:,.0f}",
                     f"{spec} ({attention} attention)", f"{engine:,.0f}", f"{engine / usual:.2f}x",
                     f"{flops_per_sample / 1e9:.4f}",
                     *throughput_columns(usual, flops_per_sample, ceilings.get("fp32")),
                     *throughput_columns(engine, flops_per_sample, ceilings.get(precisions[spec]))])
    return rows


def _parse_variant(parser: argparse.ArgumentParser, spec: str) -> tuple[str, str, bool]:
    """``"bf16+compile"`` -> ``("bf16+compile", "bf16", True)``; a bad variant is a parser error (exit 2)."""
    prec, _, extra = spec.partition("+")
    if prec not in PRECISION_DTYPES or extra not in ("", "compile"):
        parser.error(f"--engine variant {spec!r}: expected fp32, bf16 or fp16, optionally followed by +compile")
    return spec, prec, extra == "compile"


def main() -> None:
    """Parse arguments, run every config, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated training configs (model, frames, "
                   "loss, augmentation, optimizer)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=8, help="timed updates per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--engine", default="fp32,bf16,bf16+compile",
                   help="engine variants: precision (fp32, bf16, fp16) with optional +compile, comma-separated")
    p.add_argument("--attention", default="auto",
                   help="engine attention kernels (train.attention values), comma-separated; every engine variant "
                   "runs with each")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes of the usual loop")
    p.add_argument("--device", default="auto")
    p.add_argument("--dataset", default="synthetic", help="data for both loops (the configs' own is h36m)")
    p.add_argument("--data-dir")
    args = p.parse_args()
    args.engine = [_parse_variant(p, spec.strip()) for spec in args.engine.split(",")]
    args.attention = [kernel.strip() for kernel in args.attention.split(",")]
    device = select_device(args.device)
    for kernel in args.attention:
        try:
            resolve_attention_backend(kernel, device.type)  # unknown, or CUDA-only on CPU
        except ValueError as err:
            p.error(f"--attention {kernel!r}: {err}")
    env = capture_environment(device)
    print(f"device {env['device']} ({device_name(device)}), torch {env['torch']}, {env['cpu_threads']} threads, "
          f"commit {env['git_commit']}; usual loop: {args.workers} DataLoader workers, eager fp32, "
          f"default attention kernel")
    ceilings = measure_ceilings(["fp32"] + [prec for _, prec, _ in args.engine], device)
    rows = []
    for path in args.configs.split(","):
        rows += bench_config(path.strip(), args, device, ceilings)
    print(tabulate(rows, headers=["model", "params", "frames", "batch", "usual loop samples/s", "engine variant",
                                  "engine samples/s", "engine / usual", "train GFLOPs/sample", "usual GFLOP/s",
                                  "usual MFU %", "engine GFLOP/s", "engine MFU %"], tablefmt="github"))
    print("GFLOP/s = training FLOPs per sample (forward + backward as FlopCounterMode counts them, multiply-add = 2; "
          "element-wise work and the optimizer uncounted) x samples/s; MFU % = GFLOP/s / the matmul ceiling above "
          "of the loop's precision (usual loop: fp32)")


if __name__ == "__main__":
    main()
