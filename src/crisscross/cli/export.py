"""``crisscross export``: a small, self-describing checkpoint for release from a run folder or checkpoint."""

from __future__ import annotations

import argparse

from crisscross.runs.checkpoint import export_checkpoint, load_checkpoint
from crisscross.runs.onnx_export import ONNX_PARITY_TOLERANCE_M, export_onnx

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("export", help="write a run's evaluation weights as a small checkpoint",
                       description="Write the weights RUN_DIR's best checkpoint (or CHECKPOINT) was evaluated with "
                       "(EMA weights when kept) with its config and metadata, without optimizer or resume state. "
                       "The file is loadable by 'crisscross eval FILE'. Several sources are averaged "
                       "parameter by parameter (a uniform model soup): they must be the same model, and only "
                       "runs fine-tuned from one starting point (train.init_from) average well. With --format "
                       "onnx, one source becomes an ONNX graph with a dynamic batch dimension and its input and "
                       "output contract in the file's metadata, checked against PyTorch with ONNX Runtime when "
                       "it is installed (the deploy extra).")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", nargs="+")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="new file (never overwritten)")
    p.add_argument("--format", choices=("pt", "onnx"), default="pt",
                   help="pt: a small checkpoint (default); onnx: an ONNX graph of the model")
    p.set_defaults(run=run)


def _run_onnx(args: argparse.Namespace) -> int:
    if len(args.source) != 1:
        raise ValueError("--format onnx exports one checkpoint (average several first with --format pt)")
    try:
        report = export_onnx(args.source[0], args.output)
    except ImportError as err:  # a missing optional extra is the user's to install: one line, exit code 2
        raise ValueError(str(err)) from err
    parity = report["parity_max_abs_m"]
    checked = (f"ONNX Runtime matches PyTorch to {parity:.1e} m (at most {ONNX_PARITY_TOLERANCE_M:g})"
               if parity is not None else "not checked: onnxruntime is not installed")
    noise = (f", noise {report['inputs']['noise']} (standard normal, one future per row; zeros: the prior-mean "
             "forecast)") if "noise" in report["inputs"] else ""
    print(f"wrote {report['path']}: {report['model']} ({report['task']}), input {report['input_shape']}{noise}, "
          f"output {report['output_shape']}; {checked}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Export and print the file's size and parameter count."""
    if args.format == "onnx":
        return _run_onnx(args)
    out = export_checkpoint(args.source, args.output)
    ckpt = load_checkpoint(out)
    params = sum(v.numel() for v in ckpt["model_state"].values())
    averaged = f", the average of {len(args.source)} checkpoints" if len(args.source) > 1 else ""
    print(f"wrote {out}: {ckpt['model_name']}{averaged}, {params:,} tensor values, "
          f"{out.stat().st_size / 1024:.0f} KiB")
    return 0
