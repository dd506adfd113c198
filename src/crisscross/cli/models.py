"""``crisscross models``: every registered model with its parameter count (and, for lifters, FLOPs per frame)."""

from __future__ import annotations

import argparse

import torch
from tabulate import tabulate

from crisscross.benchmarking.flops import FLOP_CONVENTION, forward_flops
from crisscross.data.datasets import DATASETS
from crisscross.data.skeleton import SKELETONS, get_skeleton
from crisscross.models.registry import build_model, count_parameters, get_model_entry, list_models

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("models", help="list registered models and their parameter counts")
    p.add_argument("--dataset", default="synthetic", help="skeleton of this dataset (default: synthetic = H3.6M)")
    p.add_argument("--input-frames", type=int, default=10)
    p.add_argument("--output-frames", type=int, default=25)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the model table."""
    with_skeleton = [name for name, info in DATASETS.items() if info.skeleton in SKELETONS]
    if args.dataset not in with_skeleton:
        raise ValueError(f"--dataset {args.dataset!r}: expected a dataset with a built-in skeleton "
                         f"({', '.join(with_skeleton)}); user recordings bring their own, counted by training on them")
    skeleton = get_skeleton(DATASETS[args.dataset].skeleton)
    rows = []
    for name in list_models("forecasting"):
        model = build_model(name, {}, skeleton, args.input_frames, args.output_frames)
        entry = get_model_entry(name)
        rows.append([name, f"{count_parameters(model):,}", "yes" if entry.trainable else "no", entry.description])
    print(f"Forecasting: {len(skeleton.predicted)} joints ({skeleton.name}), {args.input_frames} -> "
          f"{args.output_frames} frames")
    print(tabulate(rows, headers=["model", "parameters", "trainable", "description"], tablefmt="github"))
    lifting = get_skeleton("h36m17")
    keypoints = torch.zeros(1, 27, lifting.num_joints, 2)
    rows = []
    for name in list_models("lifting"):
        model, entry = build_model(name, {}, lifting, 27, 1), get_model_entry(name)
        # weight-free references need a training split to run, and do no learned arithmetic
        mflops = f"{forward_flops(model, keypoints) / 1e6:,.1f}" if entry.trainable else "-"
        rows.append([name, f"{count_parameters(model):,}", mflops, "yes" if entry.trainable else "no",
                     entry.description])
    print(f"\nLifting: {lifting.num_joints} joints ({lifting.name}), 27 frames of 2D keypoints -> the centre frame; "
          f"MFLOPs of one forward pass per output frame ({FLOP_CONVENTION.split(';')[0]})")
    print(tabulate(rows, headers=["model", "parameters", "MFLOPs / frame", "trainable", "description"],
                   tablefmt="github"))
    return 0
