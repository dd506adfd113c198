"""``crisscross results FILE.md``: re-evaluate every row of the results tables in Markdown files, on any split."""

from __future__ import annotations

import argparse
import sys

from crisscross.experiments.results_tables import (
    evaluate_tables,
    find_mismatches,
    format_table,
    read_results_tables,
)
from crisscross.runs.peers import PEER_FORMATS

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "results", help="re-evaluate every row of the results tables in Markdown files, on any split",
        description="Read the results tables of Markdown files (<!-- results ... --> forecasting and "
        "<!-- lifting-results ... --> lifting blocks, as in docs/results/), re-evaluate every row from its "
        "weights (a checkpoint, 'none' for a weight-free model, 'peer:NAME' for a peer's released file given with "
        "--peer, or several checkpoints, the seeds of one recipe, printed as 'mean ± sd') and print the tables "
        "with the measured figures. With --split test a user with the full dataset gets every row's test figures "
        "(Human3.6M: subject S5) in one command; with --check the printed figures are compared with the measured "
        "ones, exit code 1 when one differs by more than half its last printed digit (0.05 mm at one decimal).",
        epilog="example: crisscross results docs/results/h36m.md --split test --data-dir ~/data/h3.6m "
        "--peer simlpe=h36m_model_40000.pth")
    p.add_argument("files", nargs="+", metavar="FILE.md", help="Markdown files holding results tables")
    p.add_argument("--split", help="evaluate on this split instead of each table's own (e.g. test)")
    p.add_argument("--protocol", help="only the tables of this protocol")
    p.add_argument("--data-dir", help="data folder (default: $CRISSCROSS_DATA, then the user config file)")
    p.add_argument("--cache-dir", help="preprocessed-array cache folder")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=FILE",
                   help=f"a peer's released weights for its 'peer:NAME' rows (peers: {', '.join(PEER_FORMATS)}); "
                   "without it those rows print n/a")
    p.add_argument("--device", default="auto")
    p.add_argument("--check", action="store_true",
                   help="compare with the printed figures; exit 1 when one is not reproduced")
    p.set_defaults(run=run)


def _peers(items: list[str]) -> dict[str, str]:
    peers = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--peer expects NAME=FILE (e.g. simlpe=h36m_model_40000.pth), got {item!r}")
        peers[name] = path
    return peers


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the tables, and with --check list what differs."""
    tables = [t for path in args.files for t in read_results_tables(path)
              if args.protocol is None or t.attrs["protocol"] == args.protocol]
    if not tables:
        raise ValueError(f"no results table of protocol {args.protocol} in {', '.join(args.files)}")
    if args.check and args.split and any(t.attrs["split"] != args.split for t in tables):
        raise ValueError(f"--check compares with the printed figures, which are of each table's own split; "
                         f"drop --split {args.split} or --check")
    measured = evaluate_tables(tables, split=args.split, data_dir=args.data_dir, cache_dir=args.cache_dir,
                               device=args.device, peers=_peers(args.peer),
                               progress=lambda message: print(message, file=sys.stderr, flush=True))
    for number, (table, figures) in enumerate(measured):
        print(("\n" if number else "") + f"{table.where}\n" + format_table(table, figures, args.split))
    skipped = sorted({row.weights for table, figures in measured for row, f in zip(table.rows, figures) if f is None})
    if skipped:
        print(f"\nnot evaluated: {', '.join(skipped)} (give the released file with --peer NAME=FILE)")
    if not args.check:
        return 0
    mismatches = [m for table, figures in measured for m in find_mismatches(table, figures)]
    rows = sum(f is not None for _, figures in measured for f in figures)
    if mismatches:
        print(f"\nnot reproduced: {len(mismatches)} printed figure(s)")
        for mismatch in mismatches:
            print(f"  {mismatch}")
        return 1
    print(f"\nevery printed figure reproduced to half its last digit ({rows} rows in {len(measured)} tables)")
    return 0
