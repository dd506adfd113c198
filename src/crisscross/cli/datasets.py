"""``crisscross datasets``: list datasets and protocols, check a data folder, and describe a lifting split's views."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tabulate import tabulate

from crisscross.analysis.lifting_views import plot_camera_views, plot_height_distribution
from crisscross.config.schema import DataConfig
from crisscross.data.datasets import DATASETS, check_data_dir, get_dataset_info
from crisscross.data.lifting_views import pixel_keypoints, view_statistics
from crisscross.evaluation.protocols import PROTOCOLS
from crisscross.tasks.registry import get_task

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("datasets", help="list datasets and protocols; check a data folder",
                       description="Without arguments, list the datasets and evaluation protocols. With --check, "
                       "report which files of a data folder are present, missing or malformed. With --stats, "
                       "describe how a lifting dataset's people look through its cameras.")
    p.add_argument("name", nargs="?", help="dataset to check (h36m, cmu, npz, humaneva, h36m-expmap, ...)")
    p.add_argument("--data-dir", help="the folder to check")
    p.add_argument("--check", action="store_true", help="check --data-dir for the named dataset")
    p.add_argument("--stats", action="store_true", help="lifting datasets: joints inside the image, the "
                   "person's height in pixels and depth, per split and subject")
    p.add_argument("--figures", metavar="DIR", help="with --stats: also draw one recording in every camera and "
                   "the height distribution into DIR (PNG; needs matplotlib)")
    p.set_defaults(run=run)


def _stats(args: argparse.Namespace) -> int:
    entry = get_dataset_info(args.name)
    task = get_task(entry.task)
    if entry.task != "lifting":
        raise ValueError(f"--stats describes lifting datasets; {args.name!r} is a {entry.task} dataset")
    heights = {}
    for split in entry.splits:
        dataset = task.load_split(DataConfig(dataset=args.name, data_dir=args.data_dir), split)
        rows = [[split, subject, f"{v['inside'] * 100:.2f}%", f"{v['height_px_median']:.0f}",
                 f"{v['height_px_min']:.0f} - {v['height_px_max']:.0f}", f"{v['depth_m_min']:.1f} - "
                 f"{v['depth_m_max']:.1f}", v["frames"]] for subject, v in view_statistics(dataset).items()]
        print(tabulate(rows, headers=["split", "subject", "joints inside", "height px (median)", "height px (range)",
                                      "depth m", "frames x cameras"], tablefmt="github"))
        print()
        heights[split] = torch.cat([(p[..., 1].amax(-1) - p[..., 1].amin(-1)) for p in
                                    (pixel_keypoints(dataset, i) for i in range(len(dataset.keys)))]).numpy()
        if args.figures and split == entry.splits[-1]:
            first = dataset.keys[0]
            views = [i for i, k in enumerate(dataset.keys) if (k.subject, k.action, k.take) ==
                     (first.subject, first.action, first.take)]
            out = Path(args.figures)
            print(f"wrote {plot_camera_views(dataset, views, out / f'{args.name}-cameras.png')}")
    if args.figures:
        print(f"wrote {plot_height_distribution(heights, Path(args.figures) / f'{args.name}-heights.png')}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the tables, a check report or view statistics; exit 1 when the check finds problems."""
    if args.stats:
        if not args.name:
            raise ValueError("name the dataset, e.g. crisscross datasets h36m-expmap --stats --data-dir DIR")
        return _stats(args)
    if args.check or args.data_dir:
        if not args.name:
            raise ValueError("name the dataset to check, e.g. crisscross datasets h36m --check --data-dir DIR")
        report = check_data_dir(args.name, args.data_dir)
        print(report.summary())
        return 0 if report.ok else 1
    rows = [[d.name, d.task, ", ".join(d.splits), f"{d.fps:g}", d.skeleton, "yes" if d.needs_data_dir else "no",
             d.description] for d in DATASETS.values()]
    print(tabulate(rows, headers=["dataset", "task", "splits", "fps", "skeleton", "needs --data-dir", "description"],
                   tablefmt="github"))
    print()
    rows = [[p.name, p.dataset, f"{p.input_frames} -> {p.output_frames}", p.version, p.description]
            for p in PROTOCOLS.values()]
    print(tabulate(rows, headers=["protocol", "dataset", "frames", "version", "samples"], tablefmt="github"))
    return 0
