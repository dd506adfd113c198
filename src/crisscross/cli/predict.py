"""``crisscross predict``: a trained model on one's own data, forecasting 3D recordings or lifting 2D keypoints."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from crisscross.analysis.animate import animate_forecast, animate_futures
from crisscross.data.body_frame import detect_up_axis
from crisscross.data.keypoints import KEYPOINT_LAYOUTS
from crisscross.inference.forecast import ROOT_MOTIONS, Forecast, ForecastPredictor, resample_to_end
from crisscross.inference.lift import Lifted, LiftPredictor
from crisscross.inference.motion_files import UNITS_TO_MM, read_motion
from crisscross.inference.predictor import Predictor
from crisscross.inference.smoothing import SMOOTHERS

__all__ = ["add_parser", "run"]

_AXES = {"x": 0, "y": 1, "z": 2}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "predict", help="forecast your 3D recording or lift your 2D keypoints with a trained checkpoint",
        description="Forecasting checkpoints read 3D joints (.npz with 'positions' and optional 'fps', 'units', "
        "'joints'; .npy; .csv; .json) in the checkpoint's skeleton or its predicted joints, and write forecasts in "
        "the input's world frame and units. Lifting checkpoints read 2D keypoints (MMPose JSON, COCO results JSON "
        "of AlphaPose or Detectron2, an OpenPose folder of *_keypoints.json, MediaPipe Pose JSON, .npz/.npy), map "
        "them to the lifter's joints and write 3D poses in metres, root-relative, in the camera frame. The output "
        "(.npz or .json) states its joints, units and frame rate; it is never overwritten.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint file or a run folder")
    p.add_argument("input", metavar="INPUT", help="a recording (forecasting) or a keypoint file or folder (lifting)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.npz|FILE.json", help="new output file")
    p.add_argument("--fps", type=float, help="the input's frame rate (overrides the file's)")
    p.add_argument("--animate", metavar="FILE.gif|FILE.mp4", help="also render the input beside the prediction")
    p.add_argument("--device", default="cpu")
    forecast = p.add_argument_group("forecasting")
    forecast.add_argument("--units", choices=tuple(UNITS_TO_MM), help="units of the input positions (default: "
                          "the file's, else detected from the body's size)")
    forecast.add_argument("--every", type=int, metavar="K", help="forecast after every K-th frame (at the model's "
                          "rate) instead of only after the last one")
    forecast.add_argument("--root-motion", choices=ROOT_MOTIONS, default="extrapolate",
                          help="the root's path during a forecast: keep its last velocity (default) or hold still")
    forecast.add_argument("--up", choices=("x", "y", "z", "-x", "-y", "-z"),
                          help="the world's up axis (default: detected, feet to head)")
    forecast.add_argument("--samples", type=int, metavar="K", help="a model that samples (stcformer-cvae, "
                          "humor-cvae...): draw K futures after each origin (forecasts [N, K, T, J, 3])")
    forecast.add_argument("--seed", type=int, default=0, help="seed of the draws for --samples (default 0)")
    lift = p.add_argument_group("lifting")
    lift.add_argument("--image-size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"),
                      help="video size in pixels (required unless the file states it)")
    lift.add_argument("--layout", choices=tuple(KEYPOINT_LAYOUTS), help="the keypoints' layout (default: from "
                      "the file's format and joint count)")
    lift.add_argument("--min-score", type=float, default=0.3, help="keypoints below this confidence are "
                      "interpolated over time (default 0.3)")
    lift.add_argument("--smooth", choices=SMOOTHERS, help="smooth the 3D poses over time (savgol needs SciPy)")
    lift.add_argument("--no-flip", action="store_true", help="no test-time flip averaging")
    p.set_defaults(run=run)


def _up_vector(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    up = np.zeros(3)
    up[_AXES[text[-1]]] = -1.0 if text.startswith("-") else 1.0
    return up


def _animate_forecast(predictor: ForecastPredictor, forecast: Forecast, input_path: Path, out: Path) -> str:
    """The last forecast after the input's last observed frames; the left panel holds the last observed pose."""
    skeleton = predictor.skeleton
    if forecast.meta["layout"] != skeleton.name:
        raise ValueError("--animate needs the full skeleton's joints (bones join every joint to its parent)")
    motion = read_motion(input_path)
    index = [motion.joints.index(n) for n in forecast.joints] if motion.joints else slice(None)
    observed, _ = resample_to_end(motion.positions[:, index], forecast.meta["input_fps"], predictor.fps)
    observed = observed[-predictor.input_frames:]
    future = forecast.positions[-1]  # [T_out, J, 3], or [K, T_out, J, 3] when sampled
    held = np.concatenate([observed, np.repeat(observed[-1:], future.shape[-3], axis=0)])
    vertical = int(np.argmax(np.abs(detect_up_axis(held, skeleton)))) if skeleton.offsets_mm else 1
    if future.ndim == 4:
        k = future.shape[0]
        futures = np.concatenate([np.repeat(observed[None], k, axis=0), future], axis=1)
        result = animate_futures(torch.as_tensor(held), torch.as_tensor(futures), skeleton.parents,
                                 predictor.input_frames, out, fps=predictor.fps, vertical_axis=vertical,
                                 title=f"{predictor.model_name}: {k} futures after {input_path.name} "
                                       f"(seed {forecast.meta['seed']})",
                                 truth_known=False, reference_title="input (last pose held)")
        return f"wrote {result.path} ({result.frames} frames, {k} futures, {result.writer})"
    result = animate_forecast(torch.as_tensor(held), torch.as_tensor(np.concatenate([observed, future])),
                              skeleton.parents, predictor.input_frames, out, fps=predictor.fps, vertical_axis=vertical,
                              title=f"{predictor.model_name}: the last forecast of {input_path.name}",
                              panel_titles=("input (last pose held)", "forecast"))
    return f"wrote {result.path} ({result.frames} frames, {result.writer})"


def _animate_lift(predictor: LiftPredictor, lifted: Lifted, out: Path) -> str:
    """The 2D input (root-centred, scaled to the 3D poses' size, at depth 0) beside the lifted 3D poses."""
    poses = torch.as_tensor(lifted.poses, dtype=torch.float32)
    keypoints = torch.as_tensor(lifted.keypoints, dtype=torch.float32)
    keypoints = keypoints - keypoints[:, :1]
    flat = torch.zeros_like(poses)
    flat[..., :2] = keypoints * (poses[..., :2].abs().amax() / keypoints.abs().amax().clamp_min(1e-9))
    upright = torch.tensor([1.0, -1.0, -1.0])  # camera y points down: a half turn about x (a rotation, no mirror)
    labels = [f"{t / lifted.fps:.2f} s" for t in range(len(poses))]
    result = animate_forecast(flat * upright, poses * upright, predictor.skeleton.parents, 0, out, fps=lifted.fps,
                              title=predictor.model_name, panel_titles=("2D input (flat)", "lifted 3D"),
                              frame_labels=labels)
    return f"wrote {result.path} ({result.frames} frames, {result.writer})"


_FORECAST_OPTIONS = {"units": None, "every": None, "up": None, "root_motion": "extrapolate", "samples": None,
                     "seed": 0}
_LIFT_OPTIONS = {"image_size": None, "layout": None, "min_score": 0.3, "smooth": None, "no_flip": False}


def _check_options(args: argparse.Namespace, predictor: ForecastPredictor | LiftPredictor) -> None:
    """Options of the other task are an error, not silently ignored."""
    other = _FORECAST_OPTIONS if isinstance(predictor, LiftPredictor) else _LIFT_OPTIONS
    given = [f"--{k.replace('_', '-')}" for k, default in other.items() if getattr(args, k) != default]
    if given:
        raise ValueError(f"{', '.join(given)}: not an option of {predictor.task} ({args.checkpoint} holds a "
                         f"{predictor.task} model, {predictor.model_name})")


def run(args: argparse.Namespace) -> int:
    """Predict, write the output file and print what it holds."""
    out = Path(args.output)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new file name (outputs are never overwritten)")
    if args.animate and Path(args.animate).exists():
        raise FileExistsError(f"{args.animate} exists; choose a new file name (outputs are never overwritten)")
    if args.animate and Path(args.animate).suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"--animate {args.animate}: the animation must be a .gif or .mp4 file")
    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    _check_options(args, predictor)
    if isinstance(predictor, LiftPredictor):
        try:
            lifted = predictor.predict_file(args.input, layout=args.layout,
                                            image_size=tuple(args.image_size) if args.image_size else None,
                                            fps=args.fps, min_score=args.min_score, flip=not args.no_flip,
                                            smoothing=args.smooth)
        except ImportError as err:  # an optional package (SciPy for savgol) is the user's to install: one line
            raise ValueError(str(err)) from err
        path = lifted.save(out)
        filled = lifted.meta.get("filled_points", 0)
        print(f"wrote {path}: {lifted.poses.shape[0]} poses of {len(lifted.joints)} joints ({predictor.skeleton.name}"
              f"), metres, root-relative, camera frame, {lifted.fps:g} fps; {filled} low-confidence or missing "
              "keypoints interpolated" + (f"; {lifted.meta['fps_rule']}" if "fps_rule" in lifted.meta else ""))
        if args.animate:
            print(_animate_lift(predictor, lifted, Path(args.animate)))
        return 0
    if args.seed != 0 and args.samples is None:
        raise ValueError("--seed seeds the draws of --samples; give --samples K too")
    forecast = predictor.predict_file(args.input, fps=args.fps, units=args.units, every=args.every,
                                      up=_up_vector(args.up), root_motion=args.root_motion, samples=args.samples,
                                      seed=args.seed)
    path = forecast.save(out)
    n, frames, joints = forecast.positions.shape[0], *forecast.positions.shape[-3:-1]
    drawn = f" x {args.samples} sampled futures (seed {args.seed})" if args.samples is not None else ""
    print(f"wrote {path}: {n} forecast{'s' if n > 1 else ''}{drawn} of {frames} frames x {joints} joints "
          f"({forecast.meta['layout']}), {forecast.units} ({forecast.meta['units_rule']}), {forecast.fps:g} fps; "
          f"{forecast.meta['frame']}")
    if args.animate:
        print(_animate_forecast(predictor, forecast, Path(args.input), Path(args.animate)))
    return 0
