"""``crisscross datasets``: list datasets and protocols, and check a data folder."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from crisscross.data.datasets import DATASETS, check_data_dir
from crisscross.evaluation.protocols import PROTOCOLS

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("datasets", help="list datasets and protocols; check a data folder",
                       description="Without arguments, list the datasets and evaluation protocols. With --check, "
                       "report which files of a data folder are present, missing or malformed.")
    p.add_argument("name", nargs="?", help="dataset to check (h36m, cmu, npz)")
    p.add_argument("--data-dir", help="the folder to check")
    p.add_argument("--check", action="store_true", help="check --data-dir for the named dataset")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the tables, or a check report; exit 1 when the check finds problems."""
    if args.check or args.data_dir:
        if not args.name:
            raise ValueError("name the dataset to check, e.g. crisscross datasets h36m --check --data-dir DIR")
        report = check_data_dir(args.name, args.data_dir)
        print(report.summary())
        return 0 if report.ok else 1
    rows = [[d.name, ", ".join(d.splits), f"{d.fps:g}", d.skeleton, "yes" if d.needs_data_dir else "no",
             d.description] for d in DATASETS.values()]
    print(tabulate(rows, headers=["dataset", "splits", "fps", "skeleton", "needs --data-dir", "description"],
                   tablefmt="github"))
    print()
    rows = [[p.name, p.dataset, f"{p.input_frames} -> {p.output_frames}", p.description]
            for p in PROTOCOLS.values()]
    print(tabulate(rows, headers=["protocol", "dataset", "frames", "windows"], tablefmt="github"))
    return 0
