"""Frame-by-frame prediction for live input: a forecaster and a lifter that take one frame at a time.

:class:`StreamingForecaster` keeps the last ``T_in`` frames in the body frame in a ring buffer; each new frame is
moved to its body frame once (:mod:`crisscross.data.body_frame`), and every frame that completes a step of the
model's rate (25 fps) yields a forecast of the next ``T_out`` frames in the world frame, exactly as
:class:`~crisscross.inference.forecast.ForecastPredictor` computes it offline with ``every=1``. Frames may arrive
at another rate: they are linearly interpolated onto the model's time grid (which starts at the first frame).
The added latency is nil: a forecast starts at the newest frame. For ``stcformer-ar`` each forecast decodes its
``T_out`` frames with the model's key/value cache (one frame of work per step); the window's encoder runs once per
new frame.

:class:`StreamingLifter` lifts each new frame of 2D keypoints with the lifter's window of ``R`` frames:

* ``mode="delayed"``: the window is centred, so the pose of frame ``t`` comes out when frame ``t + (R - 1) / 2``
  arrives; the poses equal the offline ones (:meth:`flush` ends the stream by repeating the last frame, as offline).
  Added latency: ``(R - 1) / 2`` frames (27-frame lifter at 60 fps: 13 frames, 217 ms).
* ``mode="causal"``: the pose of frame ``t`` comes out at once, the window's future half filled with frame ``t``
  (as offline at a video's last frame). No added latency; less accurate, since the lifter never saw such windows
  in training except at sequence ends.
"""

from __future__ import annotations

import numpy as np
import torch

from crisscross.data.body_frame import body_frames, detect_up_axis
from crisscross.data.cameras import normalize_screen
from crisscross.inference.forecast import ROOT_MOTIONS, ForecastPredictor
from crisscross.inference.lift import LiftPredictor
from crisscross.inference.motion_files import UNITS_TO_MM

__all__ = ["LIFT_MODES", "StreamingForecaster", "StreamingLifter"]

LIFT_MODES = ("delayed", "causal")


class StreamingForecaster:
    """One world-frame pose ``[J, 3]`` in (the forecaster's full skeleton), a forecast ``[T_out, J, 3]`` out.

    Args:
        predictor: the forecaster.
        fps: the rate frames arrive at (default: the model's).
        units: ``mm``, ``cm`` or ``m`` of the incoming poses (and of the forecasts).
        up: the world's unit up direction; detected from the first frame when None.
        root_motion: ``"extrapolate"`` or ``"hold"`` (see :mod:`crisscross.inference.forecast`).
    """

    def __init__(self, predictor: ForecastPredictor, *, fps: float | None = None, units: str = "mm",
                 up: np.ndarray | None = None, root_motion: str = "extrapolate") -> None:
        if units not in UNITS_TO_MM:
            raise ValueError(f"units must be one of {', '.join(UNITS_TO_MM)}, got {units!r}")
        if root_motion not in ROOT_MOTIONS:
            raise ValueError(f"root_motion must be one of {', '.join(ROOT_MOTIONS)}, got {root_motion!r}")
        self.predictor, self.units, self.root_motion = predictor, units, root_motion
        self.fps = float(fps or predictor.fps)
        self.up = None if up is None else np.asarray(up, dtype=np.float64)
        skeleton, frames = predictor.skeleton, predictor.input_frames
        self._body = np.zeros((frames, skeleton.num_joints, 3))  # ring buffers, oldest at self._count % frames
        self._root = np.zeros((frames, 3))
        self._to_world = np.eye(3)
        self._count = 0  # frames on the model's grid so far
        self._received = 0
        self._previous: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """Whether a full window has been seen (the next grid frame yields a forecast)."""
        return self._count >= self.predictor.input_frames

    def _add_grid_frame(self, mm: np.ndarray) -> None:
        skeleton = self.predictor.skeleton
        pelvis_frame = self.predictor.pelvis_frame
        if self.up is None and pelvis_frame:
            self.up = detect_up_axis(mm[None], skeleton)
        frames = body_frames(mm[None], skeleton, self.up, translation_only=not pelvis_frame)
        slot = self._count % self.predictor.input_frames
        self._body[slot], self._root[slot] = frames.apply(mm[None])[0], frames.root[0]
        self._to_world = frames.to_body[0]
        self._count += 1

    def push(self, pose: np.ndarray) -> np.ndarray | None:
        """Add the next frame (Array[J, 3]); the forecast from the newest grid frame, or None (window not full yet,
        or no grid frame completed by this frame)."""
        pose = np.asarray(pose, dtype=np.float64)
        joints = self.predictor.skeleton.num_joints
        if pose.shape != (joints, 3) or not np.isfinite(pose).all():
            raise ValueError(f"frame {self._received}: expected {joints} finite joints x 3, got {list(pose.shape)}")
        mm = pose * UNITS_TO_MM[self.units]
        added = 0
        if self._previous is None:
            self._add_grid_frame(mm)
            added = 1
        else:  # grid times in (t_previous, t_now]: interpolate between the two frames
            step = self.predictor.fps / self.fps
            start, end = (self._received - 1) * step, self._received * step
            for k in range(int(np.floor(start + 1e-9)) + 1, int(np.floor(end + 1e-9)) + 1):
                w = (k - start) / (end - start)
                self._add_grid_frame(self._previous * (1 - w) + mm * w)
                added += 1
        self._previous, self._received = mm, self._received + 1
        if not added or not self.ready:
            return None
        return self._forecast()

    def _forecast(self) -> np.ndarray:
        p = self.predictor
        order = (np.arange(p.input_frames) + self._count) % p.input_frames  # oldest first
        window = torch.as_tensor(self._body[order][None], dtype=torch.float32)
        body = p._predict(window.to(p.device))[0].cpu().double().numpy()
        root = p.root_path(self._root[order[-1]], self._root[order[-1 - p.root_lag]], body.shape[0], self.root_motion)
        world = body @ self._to_world + root[:, None]
        return world / UNITS_TO_MM[self.units]


class StreamingLifter:
    """One frame of 2D keypoints ``[J, 2]`` (pixels, the lifter's layout) in, ``(frame, pose [J, 3])`` out.

    Args:
        predictor: the lifter.
        image_size: ``(width, height)`` of the video in pixels.
        mode: ``"delayed"`` (centred window, exact, ``(R - 1) / 2`` frames late) or ``"causal"`` (no delay).
        flip: test-time flip averaging.
    """

    def __init__(self, predictor: LiftPredictor, image_size: tuple[int, int], *, mode: str = "delayed",
                 flip: bool = True) -> None:
        if mode not in LIFT_MODES:
            raise ValueError(f"mode must be one of {', '.join(LIFT_MODES)}, got {mode!r}")
        self.predictor, self.image_size, self.mode, self.flip = predictor, image_size, mode, flip
        self.half = predictor.receptive_field // 2
        self._frames: list[torch.Tensor] = []  # the last R normalised frames, oldest first
        self._received = 0

    @property
    def latency_frames(self) -> int:
        """Frames between a frame's arrival and its pose: ``(R - 1) / 2`` delayed, 0 causal."""
        return self.half if self.mode == "delayed" else 0

    def _lift(self, newest: int, centre: int) -> np.ndarray:
        """The pose of frame ``centre`` from the frames received up to ``newest`` (later ones repeat ``newest``)."""
        first = self._received - len(self._frames)  # the buffer holds every frame a window can need
        index = [min(max(t, 0), newest) - first for t in range(centre - self.half, centre + self.half + 1)]
        window = torch.stack([self._frames[i] for i in index])[None]
        return self.predictor.lift_normalised(window.to(self.predictor.device), self.flip)[0].cpu().double().numpy()

    def push(self, keypoints: np.ndarray) -> tuple[int, np.ndarray] | None:
        """Add the next frame; ``(frame index, pose)`` of the frame whose window is now complete, or None."""
        joints = self.predictor.skeleton.num_joints
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.shape != (joints, 2) or not np.isfinite(keypoints).all():
            raise ValueError(f"frame {self._received}: expected {joints} finite keypoints x 2 (pixels), "
                             f"got {list(keypoints.shape)}")
        width, height = self.image_size
        self._frames.append(normalize_screen(torch.as_tensor(keypoints, dtype=torch.float32), width, height))
        self._frames = self._frames[-(2 * self.half + 1):]
        self._received += 1
        newest = self._received - 1
        centre = newest - self.latency_frames
        if centre < 0:
            return None
        return centre, self._lift(newest, centre)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """The poses still owed at the end of the stream (delayed mode: the last ``(R - 1) / 2`` frames)."""
        newest = self._received - 1
        return [(c, self._lift(newest, c)) for c in range(max(newest - self.latency_frames + 1, 0), newest + 1)]
