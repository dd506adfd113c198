"""Lift 2D keypoints of one's own videos to 3D with a trained lifter.

``LiftPredictor(...)(keypoints, image_size=(1920, 1080), fps=30)`` takes detector output (a
:class:`~crisscross.data.keypoints.Keypoints2D` read from an MMPose, COCO-results, OpenPose or MediaPipe file, or an
array ``[T, J, 2]`` of pixels already in the lifter's joint layout) and returns one 3D pose per input frame. The steps:

1. Joint map: detector layouts go to the lifter's layout (Human3.6M-17 or HumanEva-15) by the documented joint map
   of :mod:`crisscross.data.keypoints`; points under the confidence threshold and frames without a person are
   filled by interpolation over time.
2. Normalisation: pixels of a ``w x h`` image become ``x / w * 2 - [1, h / w]``, the lifters' training input.
3. Frame rate: when the video's rate differs from the lifter's training rate, the keypoints are linearly resampled
   to it, lifted, and the poses resampled back to the video's frames (a lifter's window spans a fixed time).
4. Sliding windows: every frame is the centre of a window of the lifter's receptive field; the ends of the video
   repeat its first or last frame, as in evaluation. Test-time flip averaging (on by default) as in evaluation.
5. Output: metres, root-relative (the root joint at the origin), in the camera frame (x right, y down, z away from
   the camera); optionally smoothed over time (:mod:`crisscross.inference.smoothing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from crisscross.data.augment import mirror
from crisscross.data.cameras import normalize_screen
from crisscross.data.errors import DataError
from crisscross.data.keypoints import Keypoints2D, map_keypoints, read_keypoints
from crisscross.data.skeleton import Skeleton, skeleton_from_meta
from crisscross.inference.motion_files import resample_frames, write_prediction
from crisscross.inference.smoothing import smooth

__all__ = ["LiftPredictor", "Lifted"]


@dataclass(frozen=True)
class Lifted:
    """3D poses lifted from one video's keypoints."""

    poses: np.ndarray  # [T, J, 3] metres, root-relative, camera frame
    keypoints: np.ndarray  # [T, J, 2] the 2D input in the lifter's layout, pixels (after the joint map and filling)
    scores: np.ndarray  # [T, J] the 2D confidence of each joint after the joint map
    frame_ids: np.ndarray  # [T] the video's frame numbers, every one from the first to the last
    joints: tuple[str, ...]
    fps: float
    meta: dict[str, Any] = field(default_factory=dict)
    units: str = "m"

    def save(self, path: str | Path) -> Path:
        """Write a new ``.npz`` or ``.json``: ``poses``, ``keypoints_px``, ``scores``, ``joints``, ``units``, ``fps``,
        ``frame`` and the provenance in ``meta``."""
        arrays = {"poses": self.poses.astype(np.float32), "keypoints_px": self.keypoints.astype(np.float32),
                  "scores": self.scores.astype(np.float32), "frame_ids": self.frame_ids}
        return write_prediction(path, arrays, {"joints": list(self.joints), "units": self.units, "fps": self.fps,
                                               **self.meta})


class LiftPredictor:
    """A trained lifter applied to detector keypoints (see the module docstring)."""

    task = "lifting"

    def __init__(self, model: nn.Module, ckpt: dict[str, Any], source: str = "", device: str = "cpu") -> None:
        meta = ckpt["meta"]
        self.model, self.model_name, self.source, self.device = model, ckpt["model_name"], source, device
        self.skeleton: Skeleton = skeleton_from_meta(meta)
        self.receptive_field = int(meta["input_frames"])
        self.fps = float(meta.get("fps", 50.0))
        self.mirror_perm = self.skeleton.mirror_permutation()

    @property
    def layouts(self) -> dict[str, tuple[str, ...]]:
        """The lifter's joint layout (detector layouts are mapped to it)."""
        return {self.skeleton.name: self.skeleton.joint_names}

    def lift_normalised(self, keypoints: torch.Tensor, flip: bool = True) -> torch.Tensor:
        """``Tensor[B, R, J, 2]`` normalised keypoints -> ``Tensor[B, J, 3]`` the centre frame's root-relative pose
        (metres), flip-averaged when ``flip``."""
        with torch.no_grad():
            out = self.model(keypoints)
            pose = out[:, out.shape[1] // 2].float()
            if flip:
                back = self.model(mirror(keypoints, self.mirror_perm))
                pose = (pose + mirror(back[:, back.shape[1] // 2].float(), self.mirror_perm)) / 2
        return pose - pose[:, :1]

    def _windows(self, normalised: torch.Tensor, flip: bool, batch_size: int) -> np.ndarray:
        """Array[T, J, 3]: every frame lifted as the centre of its window (ends repeat the first or last frame)."""
        frames, half = normalised.shape[0], self.receptive_field // 2
        offsets = torch.arange(-half, half + 1)
        out = []
        for begin in range(0, frames, batch_size):
            centres = torch.arange(begin, min(begin + batch_size, frames))
            index = (centres[:, None] + offsets).clamp(0, frames - 1)
            out.append(self.lift_normalised(normalised[index].to(self.device), flip).cpu())
        return torch.cat(out).double().numpy()

    def __call__(self, keypoints: np.ndarray | Keypoints2D, *, image_size: tuple[int, int] | None = None,
                 fps: float | None = None, min_score: float = 0.3, flip: bool = True, smoothing: str | None = None,
                 batch_size: int = 512) -> Lifted:
        """Lift ``keypoints`` (a :class:`Keypoints2D`, or Array[T, J, 2 or 3] pixels in the lifter's layout, the third
        channel a confidence); ``image_size`` (width, height) and ``fps`` override the file's."""
        meta: dict[str, Any] = {"model": self.model_name, "checkpoint": self.source, "task": self.task,
                                "frame": "camera frame (x right, y down, z away from the camera), root-relative",
                                "receptive_field": self.receptive_field, "flip": flip}
        if isinstance(keypoints, Keypoints2D):
            where = str(keypoints.path)
            image_size = image_size or keypoints.image_size
            fps = fps or keypoints.fps
            points, scores, report = map_keypoints(keypoints, self.skeleton.name, min_score=min_score)
            meta.update(source_format=keypoints.source_format, source_layout=keypoints.layout, **report)
            frame_ids = np.asarray(keypoints.frame_ids, dtype=np.int64)
            every = np.arange(frame_ids[0], frame_ids[-1] + 1) if len(frame_ids) else frame_ids
            if len(every) != len(frame_ids):  # frames the file skips (no detection): interpolated, score 0
                points = resample_frames(points, frame_ids.astype(np.float64), every.astype(np.float64))
                scores = np.where(np.isin(every, frame_ids)[:, None],
                                  resample_frames(scores, frame_ids.astype(np.float64), every.astype(np.float64)), 0.0)
                meta["frames_not_in_file"] = int(len(every) - len(frame_ids))
            frame_ids = every
        else:
            where, array = "input", np.asarray(keypoints, dtype=np.float64)
            if array.ndim != 3 or array.shape[1] != self.skeleton.num_joints or array.shape[2] not in (2, 3):
                raise DataError(f"{where}: keypoints must be [frames, {self.skeleton.num_joints}, 2 or 3] in the "
                                f"lifter's layout ({self.skeleton.name}), got {list(array.shape)}")
            points = array[..., :2]
            scores = array[..., 2] if array.shape[2] == 3 else np.ones(array.shape[:2])
            frame_ids = np.arange(array.shape[0])
        if points.shape[0] == 0:
            raise DataError(f"{where}: no frame to lift")
        if not np.isfinite(points).all():
            frame, joint = np.argwhere(~np.isfinite(points))[0][:2]
            raise DataError(f"{where}: non-finite keypoint at frame {frame}, joint {joint}")
        if image_size is None:
            raise DataError(f"{where}: the image size is unknown; pass it (--image-size WIDTH HEIGHT)")
        width, height = (int(v) for v in image_size)
        if fps is None:
            fps, meta["fps_rule"] = self.fps, f"not given: taken as the lifter's training rate, {self.fps:g} fps"
        normalised = normalize_screen(torch.as_tensor(points, dtype=torch.float32), width, height)
        times = np.arange(points.shape[0]) / fps
        resampled = abs(fps - self.fps) > 1e-6 and points.shape[0] > 1
        if resampled:  # lift at the training rate, then read the poses back at the video's frames
            model_times = np.arange(0.0, times[-1] + 1e-9, 1.0 / self.fps)
            normalised = torch.as_tensor(resample_frames(normalised.numpy(), times, model_times), dtype=torch.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            poses = self._windows(normalised, flip, batch_size)
        finally:
            self.model.train(was_training)
        if resampled:
            poses = resample_frames(poses, model_times, times)
        if smoothing:
            poses = smooth(poses, smoothing, fps)
            poses = poses - poses[:, :1]
        meta.update(image_size=[width, height], input_fps=float(fps), smoothing=smoothing or "none",
                    layout=self.skeleton.name)
        return Lifted(poses, points, scores, frame_ids, self.skeleton.joint_names, float(fps), meta)

    def predict_file(self, path: str | Path, *, layout: str | None = None, image_size: tuple[int, int] | None = None,
                     fps: float | None = None, **options: Any) -> Lifted:
        """Read a keypoint file (:func:`~crisscross.data.keypoints.read_keypoints`) and lift it."""
        path = Path(path)
        if path.suffix == ".npz" and path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                if "positions" in stored.files and "keypoints" not in stored.files:
                    raise DataError(f"{path}: holds 3D 'positions' (a forecasting input); this checkpoint is a "
                                    f"lifter ({self.model_name}): it takes 2D keypoints")
        return self(read_keypoints(path, layout=layout, image_size=image_size, fps=fps), **options)
