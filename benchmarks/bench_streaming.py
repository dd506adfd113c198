"""Cost of one new frame in streaming: the forecasters and lifters of ``pretrained/`` fed one frame at a time.

Run::

    python benchmarks/bench_streaming.py [--iters 300] [--threads 1]

Forecasters (:class:`~crisscross.inference.streaming.StreamingForecaster`): each new world-frame pose of 32 joints is
moved to the body frame, pushed into the ring buffer of the last 10 frames, and the next 25 frames (1 s) are
forecast and put back in the world frame. Lifters (:class:`~crisscross.inference.streaming.StreamingLifter`, delayed
mode, flip averaging on): each new frame of 2D keypoints is normalised and the pose of the frame whose window is
complete is lifted. The input is a recording from the embedded data placed in a z-up world (forecasters) or its
projection (lifters); timings do not depend on the values.

Per model: p50 and p99 of the wall time of one ``push``, updates per second at p50, that rate over the model's
real-time rate (25 fps forecasting, the lifter's training rate for lifting), and the p50 over the p50 of the bare
model call at batch 1 measured in the same run (the streaming bookkeeping's overhead). PyTorch runs with
``torch.set_num_threads(threads)``; the two are timed in alternation, one call each, round after round.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

from crisscross.data.datasets import load_motion
from crisscross.inference.forecast import ForecastPredictor
from crisscross.inference.predictor import Predictor
from crisscross.inference.streaming import StreamingForecaster, StreamingLifter

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
FORECASTERS = ("h36m-stcformer-seed0.pt", "h36m-stcformer-ar-seed0.pt")
LIFTERS = ("humaneva-videopose3d-small-seed0.pt", "humaneva-stcformer-lift-seed0.pt")
_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _recording(frames: int) -> np.ndarray:
    """Array[frames, 32, 3] mm: embedded motion, looped, walking through a z-up world."""
    body = load_motion("synthetic", "test").sequence(0).numpy().astype(np.float64)
    body = np.concatenate([body] * (frames // len(body) + 1))[:frames]
    path = np.stack([np.arange(frames) * 50.0, np.zeros(frames), np.full(frames, 950.0)], axis=1)
    return body @ _Z_UP.T + path[:, None]


def _time(calls: dict[str, Callable[[int], object]], iters: int, warmup: int) -> dict[str, list[float]]:
    """Per-call wall times (ms) of each callable, called in alternation with the frame number."""
    for call in calls.values():
        for i in range(warmup):
            call(i)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(warmup, warmup + iters):
        for name, call in calls.items():
            start = time.perf_counter()
            call(i)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def _row(label: str, kind: str, stream: list[float], bare: list[float], real_time_fps: float) -> list:
    p50 = statistics.median(stream)
    p99 = float(np.percentile(stream, 99))
    rate = 1000.0 / p50
    return [label, kind, p50, p99, rate, rate / real_time_fps, p50 / statistics.median(bare)]


def forecaster_row(file: str, iters: int, warmup: int) -> list:
    predictor: ForecastPredictor = Predictor.from_checkpoint(PRETRAINED / file)
    world = _recording(predictor.input_frames + warmup + iters)
    stream = StreamingForecaster(predictor, units="mm")
    for frame in world[:predictor.input_frames - 1]:  # fill the window: every later push forecasts
        stream.push(frame)
    offset = predictor.input_frames - 1
    window = torch.randn(1, predictor.input_frames, len(predictor.predicted), 3) * 0.3

    def bare(_: int) -> object:
        with torch.no_grad():
            return predictor.model(window)

    times = _time({"stream": lambda i: stream.push(world[offset + i]), "bare": bare}, iters, warmup)
    return _row(predictor.model_name, "forecast 25 frames", times["stream"], times["bare"], predictor.fps)


def lifter_row(file: str, iters: int, warmup: int) -> list:
    predictor = Predictor.from_checkpoint(PRETRAINED / file)
    frames = warmup + iters + predictor.receptive_field
    rng = np.random.default_rng(0)
    keypoints = 320 + rng.normal(0, 40, (frames, predictor.skeleton.num_joints, 2))
    stream = StreamingLifter(predictor, (640, 480), mode="delayed")
    for frame in keypoints[:stream.latency_frames]:
        stream.push(frame)
    offset = stream.latency_frames
    window = torch.randn(1, predictor.receptive_field, predictor.skeleton.num_joints, 2) * 0.3

    def bare(_: int) -> object:
        return predictor.lift_normalised(window, flip=True)

    times = _time({"stream": lambda i: stream.push(keypoints[offset + i]), "bare": bare}, iters, warmup)
    return _row(predictor.model_name, f"lift, {stream.latency_frames} frames late", times["stream"],
                times["bare"], predictor.fps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [forecaster_row(f, args.iters, args.warmup) for f in FORECASTERS]
    rows += [lifter_row(f, args.iters, args.warmup) for f in LIFTERS]
    print(f"Streaming cost of one new frame, batch 1, {args.threads} thread(s), {args.iters} frames after "
          f"{args.warmup} warm-up; torch {torch.__version__}, {platform.processor() or platform.machine()}")
    headers = ["model", "per new frame", "p50 ms", "p99 ms", "updates/s", "x real time", "vs bare model call"]
    print(tabulate(rows, headers=headers, tablefmt="github", floatfmt=".2f"))


if __name__ == "__main__":
    main()
