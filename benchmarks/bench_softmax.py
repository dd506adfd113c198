"""Attention softmax under bf16 on CPU: computed in bf16 (the reference) against computed in fp32 and cast back.

The explicit attention path (``train.attention=explicit``, the CPU default) computes its softmax in fp32 and
casts the weights to the scores' dtype (``crisscross.models.attention._softmax``). This benchmark is the evidence
for that choice, at two levels, each against the plain bf16 softmax in the same run:

* the operator: forward + backward of the softmax on the default STCFormer's score shapes at batch 256
  (spatial ``[B, T, H, J, J]``, temporal ``[B, J, H, T, T]``, cross-temporal ``[B, J, H, T_out, T_in]``);
* the training step: the engine's bf16 step of ``configs/forecast/h36m_stcformer.yaml`` on synthetic data, with
  the module's softmax swapped for the plain bf16 one in alternate rounds.

    python benchmarks/bench_softmax.py
    python benchmarks/bench_softmax.py --rounds 5 --steps 8 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from tabulate import tabulate

from crisscross.config import load_config
from crisscross.data.datasets import load_motion
from crisscross.models import attention
from crisscross.models.registry import build_model
from crisscross.tasks.forecasting.windows import WindowBank
from crisscross.training.attention_backend import attention_backend
from crisscross.training.batches import epoch_permutation
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import Precision
from crisscross.training.setup import engine_loss

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs/forecast/h36m_stcformer.yaml"


def bf16_softmax(scores: torch.Tensor) -> torch.Tensor:
    """The reference: softmax carried out in the scores' own dtype."""
    return scores.softmax(dim=-1)


def time_op(fn, x: torch.Tensor, reps: int) -> float:
    """Milliseconds per forward + backward of ``fn(x)``."""
    grad = torch.ones_like(x)
    for _ in range(2):
        fn(x).backward(grad)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x).backward(grad)
    return (time.perf_counter() - t0) / reps * 1e3


def op_rows(args: argparse.Namespace) -> list[list]:
    b, t_in, t_out, j = args.batch_size, 10, 25, 22
    shapes = {"spatial [B,T,1,J,J]": (b, t_out, 1, j, j), "temporal [B,J,1,T,T]": (b, j, 1, t_out, t_out),
              "cross-temporal [B,J,1,T_out,T_in]": (b, j, 1, t_out, t_in)}
    rows = []
    for name, shape in shapes.items():
        x = torch.randn(*shape).bfloat16().requires_grad_(True)
        times = {"bf16": [], "fp32": []}
        for _ in range(args.rounds):
            times["bf16"].append(time_op(bf16_softmax, x, args.reps))
            times["fp32"].append(time_op(attention._softmax, x, args.reps))
        ref, new = statistics.median(times["bf16"]), statistics.median(times["fp32"])
        rows.append([f"softmax fwd+bwd {name}", f"{ref:.1f} ms", f"{new:.1f} ms", f"{ref / new:.2f}x"])
    return rows


def step_row(args: argparse.Namespace) -> list:
    cfg = load_config(CONFIG, ["data.dataset=synthetic", f"train.batch_size={args.batch_size}"])
    d, device = cfg.data, torch.device("cpu")
    motion = load_motion(d.dataset, split=d.train_split, data_dir=d.data_dir, actions=d.actions)
    bank = WindowBank.from_motion(motion, d.input_frames + d.output_frames, 1, device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model.name, cfg.model.args, motion.skeleton, d.input_frames, d.output_frames)
    optimizer = create_optimizer(model, cfg.optim)
    precision = Precision("bf16", "cpu")
    scaler = precision.grad_scaler()
    loss_fn = engine_loss(cfg, precision, device.type)
    perm = epoch_permutation(len(bank), cfg.seed, 0, device)
    b = args.batch_size

    def samples_per_s(steps: int) -> float:
        t0 = time.perf_counter()
        for i in range(steps):
            batch = bank.batch(perm[i * b:(i + 1) * b], d.augment, None)
            last = train_step(model, optimizer, scaler, batch, loss_fn, cfg.optim.clip_grad_norm)
        float(last[0])
        return steps * b / (time.perf_counter() - t0)

    fp32_softmax = attention._softmax
    rates = {"bf16": [], "fp32": []}
    try:
        with attention_backend("explicit", "cpu"):
            for _ in range(args.rounds):
                for key, fn in (("bf16", bf16_softmax), ("fp32", fp32_softmax)):
                    attention._softmax = fn
                    samples_per_s(1)  # settle after the swap
                    rates[key].append(samples_per_s(args.steps))
    finally:
        attention._softmax = fp32_softmax
    ref, new = statistics.median(rates["bf16"]), statistics.median(rates["fp32"])
    return ["stcformer bf16 training step (samples/s)", f"{ref:.0f}", f"{new:.0f}", f"{new / ref:.2f}x"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds (median reported)")
    p.add_argument("--reps", type=int, default=10, help="operator repetitions per round")
    p.add_argument("--steps", type=int, default=8, help="training updates per round")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.rounds} alternating rounds")
    rows = op_rows(args) + [step_row(args)]
    print(tabulate(rows, headers=["measure", "bf16 softmax (reference)", "fp32 softmax, cast back",
                                  "speed-up"], tablefmt="github"))


if __name__ == "__main__":
    main()
