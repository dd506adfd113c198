"""``crisscross animate``: ground truth and prediction side by side as a 3D skeleton clip, plus error plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from crisscross.analysis.animate import animate_forecast
from crisscross.analysis.errors import full_skeleton_prediction, write_error_plots
from crisscross.cli.attention import load_source, source_windows
from crisscross.config.schema import TrackConfig
from crisscross.evaluation.forecasting import make_predict_fn

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "animate", help="animate ground truth vs prediction for one evaluation window; per-joint/horizon error plots",
        description="Render evaluation window --sample of a split (observed frames, then the true and the predicted "
        "future side by side, bones of the full skeleton) as a GIF (Pillow) or MP4 (ffmpeg), and write "
        "<name>_per_joint.png and <name>_per_horizon.png with the errors over all evaluation windows of the split.")
    p.add_argument("source", nargs="?", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--model", help="registry model at random init, NAME[:key=value...], e.g. stcformer")
    p.add_argument("--sample", type=int, default=0, help="evaluation-window index (default 0)")
    p.add_argument("--split", default=None, help="data split (default: the run's validation split, else val)")
    p.add_argument("--dataset", default=None, help="dataset (default: the run's, else the embedded synthetic data)")
    p.add_argument("--data-dir", default=None, help="data folder for real datasets")
    p.add_argument("--out", metavar="FILE.gif|FILE.mp4", help="default: <run>/animations/sample<K>.gif or "
                   "runs/animations/<model>/sample<K>.gif (a new name if taken)")
    p.add_argument("--no-errors", action="store_true", help="skip the per-joint / per-horizon error plots")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=run)


def _free_path(path: Path) -> Path:
    """``path`` or, when taken, ``path`` with ``-2``, ``-3``, ... before the suffix."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def run(args: argparse.Namespace) -> int:
    """Predict the window, render the clip and the error plots."""
    if args.sample < 0:
        raise ValueError(f"--sample must be a non-negative window index, got {args.sample}")
    src = load_source(args.source, args.model, args.device)
    windows = source_windows(src, [args.sample], args.split, args.dataset, args.data_dir)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise ValueError(f"{out} exists; choose a new file name (outputs are never overwritten)")
    else:
        folder = src.run_dir / "animations" if src.run_dir else (
            Path(TrackConfig().root) / "animations" / src.model_name.replace(":", "_"))
        out = _free_path(folder / f"sample{args.sample}.gif")
    skeleton = windows.skeleton
    truth = windows.windows_mm[0]  # [T_in + T_out, J_full, 3] mm
    predict = make_predict_fn(src.model, skeleton, src.output_frames)
    future = full_skeleton_prediction(predict, windows.windows_mm.to(args.device), src.input_frames, skeleton)[0]
    pred = truth.clone()
    pred[src.input_frames:] = future.cpu()
    title = f"{src.model_name}: {windows.description}, window {args.sample} ({windows.sample_action(0)})"
    result = animate_forecast(truth, pred, skeleton.parents, src.input_frames, out, fps=windows.protocol.fps,
                              title=title, vertical_axis=skeleton.vertical_axis)
    if result.fallback:
        print(f"note: {result.fallback}")
    print(f"wrote {result.path} ({result.frames} frames, {result.writer})")
    if not args.no_errors:
        stem = result.path.with_suffix("") if result.writer != "png-frames" else out.with_suffix("")
        joint_png, horizon_png = write_error_plots(src.model, windows, stem, title=src.model_name)
        print(f"wrote {joint_png} and {horizon_png} (all {windows.starts.numel()} windows of {windows.description})")
    return 0
