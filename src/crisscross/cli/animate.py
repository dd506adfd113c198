"""``crisscross animate``: ground truth and prediction side by side as a 3D skeleton clip, plus error plots."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from crisscross.analysis.animate import animate_forecast, animate_futures
from crisscross.analysis.errors import Windows, full_skeleton_prediction, write_error_plots
from crisscross.cli.attention import Source, load_source, source_windows
from crisscross.config.schema import TrackConfig
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.tasks.forecasting.sampling import is_stochastic, make_sample_fn

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
    p.add_argument("--futures", type=int, default=None, metavar="K",
                   help="a stochastic model (stcformer-cvae, humor-cvae...): draw K futures of the window and "
                   "overlay them beside the truth, the closest one bold (default file sample<N>-futures<K>.gif)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws for --futures (default 0)")
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
    if args.futures is not None and args.futures < 1:
        raise ValueError(f"--futures must be a number of sampled futures >= 1, got {args.futures}")
    src = load_source(args.source, args.model, args.device)
    if args.futures is not None and not is_stochastic(src.model):
        raise ValueError(f"--futures needs a model that samples (registry models with stochastic=True, e.g. "
                         f"stcformer-cvae); {src.model_name} is deterministic")
    windows = source_windows(src, [args.sample], args.split, args.dataset, args.data_dir)
    if args.out:
        out = Path(args.out)
        if out.exists():
            raise ValueError(f"{out} exists; choose a new file name (outputs are never overwritten)")
    else:
        folder = src.run_dir / "animations" if src.run_dir else (
            Path(TrackConfig().root) / "animations" / src.model_name.replace(":", "_"))
        futures = f"-futures{args.futures}" if args.futures else ""
        out = _free_path(folder / f"sample{args.sample}{futures}.gif")
    skeleton = windows.skeleton
    truth = windows.windows_mm[0]  # [T_in + T_out, J_full, 3] mm
    if args.futures is not None:
        return _animate_futures(args, src, windows, truth, out)
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


def _animate_futures(args: argparse.Namespace, src: Source, windows: Windows, truth: torch.Tensor, out: Path) -> int:
    """Draw ``--futures`` K futures of the window from the model's prior and render them beside the truth."""
    sample, _ = make_sample_fn(src.model, windows.skeleton, src.output_frames, seed=args.seed)
    past = windows.windows_mm[:, :src.input_frames].to(args.device)
    drawn = sample(past, args.futures)[:, 0].cpu()  # [K, T_out, J_full, 3] mm
    futures = truth[None].repeat(args.futures, 1, 1, 1)
    futures[:, src.input_frames:] = drawn
    title = (f"{src.model_name}: {windows.description}, window {args.sample} ({windows.sample_action(0)}), "
             f"seed {args.seed}")
    result = animate_futures(truth, futures, windows.skeleton.parents, src.input_frames, out,
                             fps=windows.protocol.fps, title=title, vertical_axis=windows.skeleton.vertical_axis)
    if result.fallback:
        print(f"note: {result.fallback}")
    print(f"wrote {result.path} ({result.frames} frames, {args.futures} futures, {result.writer})")
    return 0
