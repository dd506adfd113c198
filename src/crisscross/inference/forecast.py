"""Forecast the next second of one's own 3D recordings with a trained forecaster.

``ForecastPredictor(...)(positions, fps=60, units="mm")`` takes a recording ``[T, J, 3]`` in the world frame it was
captured in and returns forecasts in that same frame, units and joint order. The steps, and why:

1. Layout: the joints are matched by name when the input names them (any order, extra joints ignored), else by
   count: the checkpoint skeleton's full joint set (Human3.6M: 32) or its predicted joints (22). The predicted-joint
   layout is the literature's own array (``dim_used``): already root-relative in the body frame, so it is passed
   through unchanged.
2. Units: declared (argument, then the file), else detected from the body's size, the median over frames of the
   largest distance of a joint from the joints' centroid: under 10 means metres, under 300 centimetres, under
   30,000 millimetres (an adult measures about 0.6 to 1.1 m so). Models work in metres.
3. Frame rate: declared (argument, then the file; required), and the recording is linearly resampled to the
   model's rate (25 fps) on a time grid that ends at the recording's last frame, so the last forecast starts
   exactly where the recording stops.
4. Body frame (:mod:`crisscross.data.body_frame`): every frame is moved to the pelvis frame the model was trained in
   (root at the origin, heading removed) for the skeletons whose training data is in that frame
   (:data:`PELVIS_FRAME_SKELETONS`); a user skeleton's recordings are only root-centred, as its training data was.
5. Forecast: the last ``T_in`` frames before each origin (every ``every``-th frame from the first full window, or
   only the last frame) go through the model, rolled out autoregressively when it predicts fewer frames than asked.
   Joints the model does not predict come from the last observed frame (copies from their source joints).
6. Back to the world: each forecast is turned by its origin frame's heading and placed at the root, which either
   holds its last position (``root_motion="hold"``) or keeps the root's mean velocity over the last 0.2 s
   (``"extrapolate"``, default): the forecasters predict the pose, not the path.

A sampling forecaster (registry ``stochastic=True``) draws ``samples=K`` futures after each origin instead of its
one deterministic forecast, from a ``torch.Generator`` seeded with ``seed`` (equal seeds, equal futures); the
forecasts then have a sample axis, ``[N, K, T_out, J, 3]``, each future placed in the world as in step 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from crisscross.data.body_frame import BodyFrames, body_frames
from crisscross.data.errors import DataError
from crisscross.data.skeleton import H36M_17_FROM_32, H36M_17_SKELETON, Skeleton, skeleton_from_meta
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.inference.motion_files import (
    UNITS_TO_MM,
    Motion3D,
    check_motion,
    read_motion,
    resample_frames,
    write_prediction,
)
from crisscross.tasks.forecasting.sampling import is_stochastic, make_sample_fn

__all__ = ["PELVIS_FRAME_SKELETONS", "ROOT_MOTIONS", "Forecast", "ForecastPredictor", "detect_units", "resample_to_end"]

ROOT_MOTIONS = ("extrapolate", "hold")
#: Skeletons whose training data has the root's rotation removed in every frame (the exp-map datasets and the
#: embedded data); the others (user skeletons) were trained on root-centred motion that keeps its orientation.
PELVIS_FRAME_SKELETONS = ("h36m", "cmu")
_ROOT_VELOCITY_S = 0.2
# Body extent (median largest joint-to-centroid distance) limits between metres, centimetres and millimetres.
_UNIT_LIMITS = ((10.0, "m"), (300.0, "cm"), (30000.0, "mm"))


def detect_units(positions: np.ndarray) -> tuple[str, float]:
    """``(units, extent)``: the units the body's size implies (see the module docstring) and the size measured.

    Raises:
        DataError: the size fits no unit (``extent`` of 0 or above 30,000).
    """
    centred = positions - positions.mean(axis=1, keepdims=True)
    extent = float(np.median(np.linalg.norm(centred, axis=-1).max(axis=1)))
    for limit, units in _UNIT_LIMITS:
        if 0 < extent < limit:
            return units, extent
    raise DataError(f"cannot tell the units from a body extent of {extent:g}; declare them (--units mm|cm|m)")


def resample_to_end(x: np.ndarray, fps: float, target_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(resampled [T', ...], source_index [T'])``: ``x`` linearly resampled to ``target_fps`` on the grid that ends
    at its last frame (``source_index`` holds each new frame's fractional index into ``x``)."""
    frames = x.shape[0]
    if abs(fps - target_fps) < 1e-9:
        return x, np.arange(frames, dtype=np.float64)
    steps = int(np.floor((frames - 1) / fps * target_fps + 1e-9))
    source = (frames - 1) - np.arange(steps, -1, -1) * (fps / target_fps)
    return resample_frames(x, np.arange(frames, dtype=np.float64), source), source


@dataclass(frozen=True)
class Forecast:
    """Forecasts of one recording, in its frame and units."""

    positions: np.ndarray  # [N, T_out, J, 3], or [N, K, T_out, J, 3] with K sampled futures per origin
    origin_frames: np.ndarray  # [N] the input frame (fractional when resampled) each forecast follows
    joints: tuple[str, ...]
    units: str
    fps: float  # frame rate of the forecasts (the model's)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write a new ``.npz`` or ``.json``: ``forecasts``, ``origin_frames``, ``origin_times_s``, ``joints``,
        ``units``, ``fps`` and the provenance in ``meta`` (``samples``, ``seed`` and ``forecast_axes`` when
        sampled)."""
        arrays = {"forecasts": self.positions.astype(np.float32), "origin_frames": self.origin_frames,
                  "origin_times_s": self.origin_frames / self.meta["input_fps"]}
        return write_prediction(path, arrays, {"joints": list(self.joints), "units": self.units, "fps": self.fps,
                                               **self.meta})


class ForecastPredictor:
    """A trained forecaster applied to recordings of one's own (see the module docstring)."""

    task = "forecasting"

    def __init__(self, model: nn.Module, ckpt: dict[str, Any], source: str = "", device: str = "cpu") -> None:
        meta = ckpt["meta"]
        self.model, self.model_name, self.source, self.device = model, ckpt["model_name"], source, device
        self.skeleton: Skeleton = skeleton_from_meta(meta)
        self.input_frames, self.output_frames = int(meta["input_frames"]), int(meta["output_frames"])
        self.fps = float(meta.get("fps", 25.0))
        self.predicted = list(self.skeleton.predicted)
        self.pelvis_frame = self.skeleton.name in PELVIS_FRAME_SKELETONS
        # frames (at the model's rate) over which the root's velocity is measured for ``root_motion="extrapolate"``
        self.root_lag = max(1, min(round(_ROOT_VELOCITY_S * self.fps), self.input_frames - 1))
        self._predict = make_predict_fn(model, self.skeleton, self.output_frames)

    @property
    def layouts(self) -> dict[str, tuple[str, ...]]:
        """The joint layouts this forecaster takes: its skeleton's joints and its predicted joints."""
        names = self.skeleton.joint_names
        return {self.skeleton.name: names, f"{self.skeleton.name}-predicted": tuple(names[j] for j in self.predicted)}

    def _layout(self, motion: Motion3D, where: str) -> tuple[str, np.ndarray]:
        """``(layout, positions in the layout's joint order)``."""
        (full_name, full), (pred_name, pred) = self.layouts.items()
        x = motion.positions
        if motion.joints is not None:
            index = {n: i for i, n in enumerate(motion.joints)}
            for name, names in ((full_name, full), (pred_name, pred)):
                if all(n in index for n in names):
                    return name, x[:, [index[n] for n in names]]
            missing = [n for n in pred if n not in index]
            raise DataError(f"{where}: joints {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} missing; "
                            f"this forecaster takes the {len(full)} joints of '{full_name}' or its {len(pred)} "
                            "predicted joints, by name")
        if x.shape[1] == len(full):
            return full_name, x
        if x.shape[1] == len(pred):
            return pred_name, x
        hint = ""
        if x.shape[1] == 17 and self.skeleton.name == "h36m":
            have = set(H36M_17_FROM_32)
            missing = [self.skeleton.joint_names[j] for j in self.predicted if j not in have]
            hint = (f" (the 17-joint Human3.6M layout, {', '.join(H36M_17_SKELETON.joint_names[:3])} ..., lacks "
                    f"{', '.join(missing)}, which this forecaster predicts)")
        raise DataError(f"{where}: {x.shape[1]} joints{hint}; this forecaster takes the {len(full)} joints of "
                        f"'{full_name}' or its {len(pred)} predicted joints (name them with a 'joints' entry)")

    def __call__(self, positions: np.ndarray | Motion3D, *, fps: float | None = None, units: str | None = None,
                 joints: list[str] | None = None, every: int | None = None, up: np.ndarray | None = None,
                 root_motion: str = "extrapolate", batch_size: int = 256, samples: int | None = None,
                 seed: int = 0) -> Forecast:
        """Forecast ``positions`` (Array[T, J, 3] or a :class:`Motion3D`); arguments override the file's values.

        Args:
            fps: the recording's frame rate (required here or in the file).
            units: ``mm``, ``cm`` or ``m``; detected from the body size when neither here nor in the file.
            joints: the input's joint names (else matched by count).
            every: forecast after every ``every``-th resampled frame from the first full window; None: only after
                the last frame.
            up: the world's unit up direction; detected when None (the axis from the feet to the head).
            root_motion: ``"extrapolate"`` or ``"hold"`` (see the module docstring).
            samples: ``K`` futures per origin drawn from a sampling forecaster (``None``: its one forecast).
            seed: seed of the draws when ``samples`` is given.
        """
        motion = positions if isinstance(positions, Motion3D) else Motion3D(None, np.asarray(positions))
        motion = check_motion(Motion3D(motion.path, motion.positions, fps if fps is not None else motion.fps,
                                       units or motion.units, tuple(joints) if joints else motion.joints))
        where = str(motion.path) if motion.path is not None else "input"
        if root_motion not in ROOT_MOTIONS:
            raise ValueError(f"root_motion must be one of {', '.join(ROOT_MOTIONS)}, got {root_motion!r}")
        if every is not None and every < 1:
            raise ValueError(f"every must be a positive number of frames, got {every}")
        if samples is not None:
            if samples < 1:
                raise ValueError(f"samples must be a number of futures >= 1, got {samples}")
            if not is_stochastic(self.model):
                raise ValueError(f"{self.model_name} is deterministic: sampled futures need a model that samples "
                                 "(registry models with stochastic=True, e.g. stcformer-cvae, humor-cvae)")
        if motion.fps is None:
            raise DataError(f"{where}: the frame rate is unknown; store 'fps' in the file or pass it (--fps)")
        layout, x = self._layout(motion, where)
        units_rule = "declared"
        if motion.units is None:
            detected, extent = detect_units(x)
            motion = Motion3D(motion.path, motion.positions, motion.fps, detected, motion.joints)
            units_rule = f"detected from the body extent {extent:.4g} (see crisscross.inference.forecast)"
        mm, source_index = resample_to_end(x * UNITS_TO_MM[motion.units], motion.fps, self.fps)
        if mm.shape[0] < self.input_frames:
            span = (x.shape[0] - 1) / motion.fps
            raise DataError(f"{where}: {x.shape[0]} frames at {motion.fps:g} fps cover {span:.2f} s; this forecaster "
                            f"needs {self.input_frames} frames at {self.fps:g} fps "
                            f"({(self.input_frames - 1) / self.fps:.2f} s)")
        full = layout == self.skeleton.name
        frames = body_frames(mm, self.skeleton, up, translation_only=not self.pelvis_frame) if full else None
        body = frames.apply(mm) if frames is not None else mm
        last = mm.shape[0] - 1
        origins = np.arange(self.input_frames - 1, last + 1, every) if every else np.array([last])
        forecasts = self._forecast_body(body, origins, full, batch_size, samples, seed)
        if frames is not None:
            forecasts = self._to_world(forecasts, frames, origins, root_motion)
        names = self.layouts[layout]
        meta = {"model": self.model_name, "checkpoint": self.source, "task": self.task, "layout": layout,
                "input_fps": float(motion.fps), "input_frames_used": self.input_frames, "units_rule": units_rule,
                "frame": ("the input's world frame; the root " + ("keeps its last velocity" if root_motion ==
                          "extrapolate" else "holds its last position")) if full else
                         "the input's (root-relative body frame, as the model's training data)",
                "root_motion": root_motion if full else "none"}
        if samples is not None:
            meta.update(samples=samples, seed=seed, forecast_axes="origin, sample, frame, joint, xyz")
        return Forecast(forecasts / UNITS_TO_MM[motion.units], source_index[origins], names, motion.units,
                        self.fps, meta)

    def _forecast_body(self, body_mm: np.ndarray, origins: np.ndarray, full: bool, batch_size: int,
                       samples: int | None = None, seed: int = 0) -> np.ndarray:
        """Array[N, T_out, J, 3] mm in the body frame, one forecast after each origin frame (``[N, K, T_out, J, 3]``
        with ``samples=K``: K futures drawn from one generator seeded with ``seed``, batch after batch)."""
        offsets = np.arange(-self.input_frames + 1, 1)
        predict = self._predict
        if samples is not None:
            sample, _ = make_sample_fn(self.model, self.skeleton, self.output_frames, seed=seed)
            batch_size = max(1, batch_size // samples)

            def predict(windows: torch.Tensor) -> torch.Tensor:
                return sample(windows, samples).transpose(0, 1)  # [B, K, T_out, J, 3]
        out = []
        for begin in range(0, len(origins), batch_size):
            windows = torch.as_tensor(body_mm[origins[begin:begin + batch_size, None] + offsets], dtype=torch.float32)
            if not full:  # the model's own joints: lay them into a full skeleton and take them back out
                padded = windows.new_zeros((*windows.shape[:2], self.skeleton.num_joints, 3))
                padded[:, :, self.predicted] = windows
                windows = padded
            pred = predict(windows.to(self.device)).cpu()
            out.append((pred if full else pred[..., self.predicted, :]).double().numpy())
        return np.concatenate(out)

    def root_path(self, root: np.ndarray, earlier: np.ndarray, frames: int, root_motion: str) -> np.ndarray:
        """Array[frames, 3]: the root during a forecast, from its position ``root`` at the origin and ``earlier``,
        :attr:`root_lag` frames before: held, or moving on at the velocity between the two."""
        if root_motion == "hold":
            return np.broadcast_to(root, (frames, 3))
        return root + np.arange(1, frames + 1)[:, None] * (root - earlier) / self.root_lag

    def _to_world(self, body: np.ndarray, frames: BodyFrames, origins: np.ndarray, root_motion: str) -> np.ndarray:
        """Body-frame forecasts ``[N, (K,) T_out, J, 3]`` -> world, each with its origin frame's rotation and the
        root path chosen (every sampled future of an origin on the same path)."""
        world = np.empty_like(body)
        for n, origin in enumerate(origins):
            root = self.root_path(frames.root[origin], frames.root[origin - self.root_lag], body.shape[-3],
                                  root_motion)
            if body.ndim == 5:
                for k in range(body.shape[1]):
                    world[n, k] = frames.invert(body[n, k], origin, root)
            else:
                world[n] = frames.invert(body[n], origin, root)
        return world

    def predict_file(self, path: str | Path, **options: Any) -> Forecast:
        """Read a recording (:func:`~crisscross.inference.motion_files.read_motion`) and forecast it."""
        return self(read_motion(path), **options)
