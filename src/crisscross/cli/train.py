"""``crisscross train``: train a forecaster, then print MPJPE per horizon next to zero-velocity."""

from __future__ import annotations

import argparse
import sys

from crisscross.cli.common import add_config_arguments, config_from_args
from crisscross.runtime import distributed_info
from crisscross.tasks import evaluate_source, get_task
from crisscross.training import fit

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("train", help="train a model (default: the default forecaster on the embedded data)",
                       description="Train a model in a new run folder; --resume continues a run exactly. "
                                   "With --resume, KEY=VALUE overrides may change only the run's length "
                                   "(train.epochs, train.max_steps, train.time_budget_s, "
                                   "train.early_stop_patience), e.g. to train a completed run for more epochs.")
    add_config_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    p.add_argument("--no-baseline", action="store_true", help="skip the zero-velocity comparison")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("--quiet", "-q", dest="verbosity", action="store_const", const="quiet", default="normal",
                      help="print nothing while training, only the result")
    loud.add_argument("--verbose", "-v", dest="verbosity", action="store_const", const="verbose",
                      help="also print a line at every logged step (train.log_every_steps)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate on the validation split, print the per-horizon table and the run folder."""
    if args.resume and args.config:
        raise ValueError("--resume continues a run with its own config; drop --config")
    if args.resume:
        result = fit(None, resume=args.resume, resume_overrides=args.overrides, verbosity=args.verbosity)
    else:
        result = fit(config_from_args(args), verbosity=args.verbosity)
    if distributed_info()[0] != 0:
        return 0
    if result.status != "completed":
        print(f"run {result.status} at step {result.steps}; resume with: crisscross train --resume {result.run_dir}")
        # the shell's convention for a process stopped by a signal: 128 + its number (Ctrl-C 130, SIGTERM 143)
        return 128 + result.stop_signal if result.stop_signal else 1
    reasons = {"early_stop": "early stopping (train.early_stop_patience)", "max_steps": "train.max_steps",
               "time_budget": "the time budget (train.time_budget_s)"}
    if result.stopped_by in reasons:
        print(f"training stopped by {reasons[result.stopped_by]} after epoch {result.epochs}, "
              f"{result.train_time_s:.0f} s")
    ev = result.eval
    rows = {f"{ev['model']}": ev}
    task = get_task(result.config.task)
    if not args.no_baseline:
        d = result.config.data  # the resumed run's own config when cfg is None
        rows[task.baseline_model] = evaluate_source(
            model_name=task.baseline_model, dataset=ev["dataset"], split=ev["split"], protocol=ev["protocol"],
            data_dir=d.data_dir, cache_dir=d.cache_dir, input_frames=ev["input_frames"],
            output_frames=ev["output_frames"], actions=d.actions, task=task.name)
    print("\n" + task.results_table(rows))
    print(f"\nrun folder: {result.run_dir}  (train time {result.train_time_s:.0f} s, {result.steps} steps)")
    sys.stdout.flush()
    return 0
