"""``crisscross eval``: evaluate a run folder, a checkpoint, or a weight-free model by name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crisscross.evaluation.protocols import StochasticProtocol, get_protocol
from crisscross.tasks.registry import get_task
from crisscross.tasks.sources import evaluate_source

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("eval", help="evaluate a run, a checkpoint or a model by name",
                       description="Evaluate RUN_DIR or CHECKPOINT (or --model NAME for weight-free baselines) on "
                       "a dataset split under a named protocol; prints per-horizon and per-action tables.")
    p.add_argument("source", nargs="?", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--model", help="a registry model without weights, e.g. zero-velocity")
    p.add_argument("--dataset", help="dataset name (default: the checkpoint's)")
    p.add_argument("--data-dir", help="data folder (default: the checkpoint's)")
    p.add_argument("--cache-dir", help="preprocessed-array cache folder")
    p.add_argument("--split", help="train, val or test (default: the checkpoint's validation split)")
    p.add_argument("--protocol", help="evaluation protocol name (see crisscross datasets --protocols)")
    p.add_argument("--actions", help="comma-separated actions to restrict to, e.g. walking,eating")
    p.add_argument("--device", default="auto")
    p.add_argument("--joints", choices=("22", "32", "both"), default="both",
                   help="forecasting: which joint averaging to print")
    p.add_argument("--per-action", action="store_true", help="also print the per-action table")
    p.add_argument("--no-flip", action="store_true", help="lifting: no test-time flip augmentation (on by default)")
    p.add_argument("--samples", type=int, metavar="K",
                   help="stochastic protocols: futures drawn per past (default the protocol's K, 50); a smaller K is "
                   "a quick check, not comparable with the protocol's figures")
    p.add_argument("--seed", type=int, help="stochastic protocols: seed of the sampling (default 0)")
    p.add_argument("--output", metavar="FILE.json", help="write the full result as JSON (never overwrites)")
    p.set_defaults(run=run)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the task's ``evaluate``: ``flip`` (lifting), ``samples`` and ``seed`` (stochastic)."""
    options: dict[str, Any] = {"flip": False} if args.no_flip else {}
    stochastic = {name: value for name, value in (("samples", args.samples), ("seed", args.seed)) if value is not None}
    if stochastic and args.protocol and not isinstance(get_protocol(args.protocol), StochasticProtocol):
        flags = " and ".join(f"--{name}" for name in stochastic)
        raise ValueError(f"{flags} {'applies' if len(stochastic) == 1 else 'apply'} to stochastic protocols only, "
                         f"not to {args.protocol} (e.g. --protocol h36m-stochastic-10-25)")
    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    return {**options, **stochastic}


def run(args: argparse.Namespace) -> int:
    """Evaluate and print tables; optionally write JSON."""
    actions = tuple(a.strip() for a in args.actions.split(",") if a.strip()) if args.actions else None
    options = _options(args)
    result = evaluate_source(args.source, model_name=args.model, dataset=args.dataset, split=args.split,
                             protocol=args.protocol, data_dir=args.data_dir, cache_dir=args.cache_dir,
                             actions=actions, device=args.device, options=options or None)
    print(get_task(result["task"]).report(result, result["model"], per_action=args.per_action, joints=args.joints))
    if args.output:
        out = Path(args.output)
        if out.exists():
            raise FileExistsError(f"{out} exists; choose a new file name (results are never overwritten)")
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {out}")
    return 0
