"""``crisscross export``: a small, self-describing checkpoint for release from a run folder or checkpoint."""

from __future__ import annotations

import argparse

from crisscross.runs.checkpoint import export_checkpoint, load_checkpoint

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("export", help="write a run's evaluation weights as a small checkpoint",
                       description="Write the weights RUN_DIR's best checkpoint (or CHECKPOINT) was evaluated with "
                       "(EMA weights when kept) with its config and metadata, without optimizer or resume state. "
                       "The file is loadable by 'crisscross eval FILE'. Several sources are averaged "
                       "parameter by parameter (a uniform model soup): they must be the same model, and only "
                       "runs fine-tuned from one starting point (train.init_from) average well.")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", nargs="+")
    p.add_argument("--output", "-o", required=True, metavar="FILE.pt", help="new file (never overwritten)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print the file's size and parameter count."""
    out = export_checkpoint(args.source, args.output)
    ckpt = load_checkpoint(out)
    params = sum(v.numel() for v in ckpt["model_state"].values())
    averaged = f", the average of {len(args.source)} checkpoints" if len(args.source) > 1 else ""
    print(f"wrote {out}: {ckpt['model_name']}{averaged}, {params:,} tensor values, "
          f"{out.stat().st_size / 1024:.0f} KiB")
    return 0
