"""Lifting one's own keypoints: the evaluation's windows and flip, frame rates, detector files, gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_fixtures import LIFTER

from crisscross.data.augment import mirror
from crisscross.data.cameras import normalize_screen
from crisscross.data.errors import DataError
from crisscross.data.keypoints import KEYPOINT_LAYOUTS
from crisscross.inference.lift import LiftPredictor
from crisscross.inference.motion_files import resample_frames
from crisscross.inference.predictor import Predictor

SIZE = (1000, 1000)


@pytest.fixture(scope="module")
def lifter() -> LiftPredictor:
    return Predictor.from_checkpoint(LIFTER)


def walker(frames: int, joints: int = 15, seed: int = 0) -> np.ndarray:
    """Array[frames, joints, 2] pixels: a smooth, person-sized figure moving across a 1000 x 1000 image."""
    rng = np.random.default_rng(seed)
    base = 500 + rng.normal(0, 120, (joints, 2))
    t = np.arange(frames)[:, None, None]
    return base + 40 * np.sin(t / 6 + rng.uniform(0, 6, (joints, 1))) + np.array([3.0, 0.0]) * t


def coco_walker(t: int) -> np.ndarray:
    """Array[17, 2]: a COCO-17 figure standing upright, swinging its limbs."""
    s = np.sin(2 * np.pi * t / 20)
    x, y = 500 + 4 * t, 300
    points = {"nose": (x, y - 40), "left_eye": (x + 8, y - 48), "right_eye": (x - 8, y - 48),
              "left_ear": (x + 18, y - 44), "right_ear": (x - 18, y - 44), "left_shoulder": (x + 45, y + 20),
              "right_shoulder": (x - 45, y + 20), "left_elbow": (x + 55 + 10 * s, y + 95),
              "right_elbow": (x - 55 - 10 * s, y + 95), "left_wrist": (x + 60 + 20 * s, y + 165),
              "right_wrist": (x - 60 - 20 * s, y + 165), "left_hip": (x + 30, y + 200),
              "right_hip": (x - 30, y + 200), "left_knee": (x + 32 + 25 * s, y + 300),
              "right_knee": (x - 32 - 25 * s, y + 300), "left_ankle": (x + 34 + 40 * s, y + 400),
              "right_ankle": (x - 34 - 40 * s, y + 400)}
    return np.array([points[name] for name in KEYPOINT_LAYOUTS["coco17"]], dtype=np.float64)


def write_mmpose(path: Path, frames: int, skip: tuple[int, ...] = ()) -> Path:
    """An MMPoseInferencer video prediction file (``pred_out_dir``), one walker and, in frame 4, a faint bystander."""
    out = []
    for t in range(frames):
        instances = [] if t in skip else [{"keypoints": coco_walker(t).tolist(), "keypoint_scores": [0.9] * 17,
                                           "bbox": [[430.0, 250.0, 600.0, 710.0]], "bbox_score": 0.98}]
        if t == 4:
            instances.insert(0, {"keypoints": (coco_walker(t) + 300).tolist(), "keypoint_scores": [0.2] * 17,
                                 "bbox": [[730.0, 550.0, 900.0, 1000.0]], "bbox_score": 0.4})
        out.append({"frame_id": t, "instances": instances})
    path.write_text(json.dumps(out))
    return path


def write_mediapipe(path: Path, frames: int) -> Path:
    """MediaPipe PoseLandmarker results per frame, serialised with the image size: normalised x, y."""
    by_name = dict.fromkeys(KEYPOINT_LAYOUTS["mediapipe33"])
    coco = KEYPOINT_LAYOUTS["coco17"]
    out = []
    for t in range(frames):
        pose = dict(zip(coco, coco_walker(t)))
        landmarks = []
        for name in by_name:
            x, y = pose.get(name, pose["nose"])
            landmarks.append({"x": x / 1280, "y": y / 720, "z": -0.1, "visibility": 0.95, "presence": 0.99})
        out.append({"pose_landmarks": [landmarks]})
    path.write_text(json.dumps({"image_width": 1280, "image_height": 720, "fps": 30, "frames": out}))
    return path


def _offline(lifter: LiftPredictor, normalised: torch.Tensor) -> np.ndarray:
    """Every frame's pose computed as evaluation does: clamped centred windows, flip averaged, root-relative."""
    half, frames = lifter.receptive_field // 2, normalised.shape[0]
    index = (torch.arange(frames)[:, None] + torch.arange(-half, half + 1)).clamp(0, frames - 1)
    windows = normalised[index]
    with torch.no_grad():
        direct = lifter.model(windows)[:, -1]  # this lifter outputs the centre frame only: [B, 1, J, 3]
        flipped = mirror(lifter.model(mirror(windows, lifter.mirror_perm))[:, -1], lifter.mirror_perm)
    pose = (direct + flipped) / 2
    return (pose - pose[:, :1]).double().numpy()


def test_the_factory_builds_a_lifter(lifter: LiftPredictor) -> None:
    assert lifter.task == "lifting" and lifter.model_name == "videopose3d-small"
    assert (lifter.receptive_field, lifter.fps, lifter.skeleton.name) == (27, 60.0, "humaneva15")


def test_an_array_in_the_lifters_layout_is_lifted_as_in_evaluation(lifter) -> None:
    px = walker(40)
    out = lifter(px, image_size=SIZE, fps=60)
    expected = _offline(lifter, normalize_screen(torch.as_tensor(px, dtype=torch.float32), *SIZE))
    np.testing.assert_allclose(out.poses, expected, atol=1e-6)
    assert out.poses.shape == (40, 15, 3) and out.units == "m" and out.fps == 60.0
    np.testing.assert_allclose(out.poses[:, 0], 0.0)  # root-relative
    assert out.frame_ids.tolist() == list(range(40)) and "camera frame" in out.meta["frame"]


def test_another_frame_rate_is_resampled_and_read_back(lifter) -> None:
    still = np.repeat(walker(1), 30, axis=0)  # a still figure: every frame must get the same pose
    out = lifter(still, image_size=SIZE, fps=30)
    assert out.poses.shape == (30, 15, 3) and out.fps == 30.0
    np.testing.assert_allclose(out.poses, np.repeat(out.poses[:1], 30, axis=0), atol=1e-6)
    moving = lifter(walker(30), image_size=SIZE, fps=30)
    same_rate = lifter(walker(30), image_size=SIZE, fps=60)
    assert not np.allclose(moving.poses, same_rate.poses)  # the window spans the same time, not the same frames
    assert lifter(walker(30), image_size=SIZE).meta["fps_rule"].startswith("not given")


def test_resample_frames_is_linear() -> None:
    x = np.arange(5, dtype=np.float64)[:, None] * 2
    np.testing.assert_allclose(resample_frames(x, np.arange(5.0), np.array([0.5, 3.25, 9.0]))[:, 0], [1.0, 6.5, 8.0])


def test_an_mmpose_file_lifts_with_one_call(lifter, tmp_path: Path) -> None:
    path = write_mmpose(tmp_path / "results.json", 30)
    out = lifter.predict_file(path, image_size=(1280, 720), fps=30)
    assert out.poses.shape == (30, 15, 3)
    assert out.meta["source_format"] == "mmpose" and out.meta["joint_map"] == "coco17->humaneva15"
    # the walker, not the faint bystander listed first in frame 4
    np.testing.assert_allclose(out.keypoints[4, 0], (coco_walker(4)[11] + coco_walker(4)[12]) / 2)
    # the lifted figure is upright in the camera frame: the head above (smaller y than) the ankles
    head, ankles = KEYPOINT_LAYOUTS["humaneva15"].index("Head"), [10, 13]
    assert (out.poses[:, head, 1] < out.poses[:, ankles, 1].mean(axis=1) - 0.8).all()


def test_frames_missing_from_the_file_are_interpolated(lifter, tmp_path: Path) -> None:
    path = tmp_path / "gaps.json"
    detections = [{"image_id": f"{t}.jpg", "category_id": 1, "score": 2.0,
                   "keypoints": np.concatenate([coco_walker(t), np.full((17, 1), 0.9)], 1).ravel().tolist()}
                  for t in range(30) if t not in (10, 11)]
    path.write_text(json.dumps(detections))  # AlphaPose lists only the frames with somebody
    out = lifter.predict_file(path, image_size=(1280, 720), fps=30)
    assert out.frame_ids.tolist() == list(range(30)) and out.meta["frames_not_in_file"] == 2
    assert (out.scores[10:12] == 0).all() and (out.scores[9] > 0).all()
    np.testing.assert_allclose(out.keypoints[10], out.keypoints[9] + (out.keypoints[12] - out.keypoints[9]) / 3)


def test_a_mediapipe_file_with_its_image_size(lifter, tmp_path: Path) -> None:
    out = lifter.predict_file(write_mediapipe(tmp_path / "pose.json", 25))
    assert out.poses.shape == (25, 15, 3) and out.fps == 30.0 and out.meta["image_size"] == [1280, 720]
    assert out.meta["joint_map"] == "mediapipe33->humaneva15"


def test_smoothing_keeps_the_poses_root_relative(lifter) -> None:
    rng = np.random.default_rng(1)
    jittery = walker(60) + rng.normal(0, 4, (60, 15, 2))
    raw = lifter(jittery, image_size=SIZE, fps=60)
    smoothed = lifter(jittery, image_size=SIZE, fps=60, smoothing="one-euro")
    assert smoothed.meta["smoothing"] == "one-euro"
    np.testing.assert_allclose(smoothed.poses[:, 0], 0.0)
    jitter = [np.abs(np.diff(x.poses, n=2, axis=0)).mean() for x in (raw, smoothed)]
    assert jitter[1] < jitter[0]


@pytest.mark.parametrize(("change", "kwargs", "message"), [
    (lambda x: x[:, :14], {"image_size": SIZE}, r"keypoints must be \[frames, 15, 2 or 3\]"),
    (lambda x: np.where(np.arange(15)[None, :, None] == 3, np.nan, x), {"image_size": SIZE},
     "non-finite keypoint at frame 0, joint 3"),
    (lambda x: x, {}, "image size is unknown"),
    (lambda x: x[:0], {"image_size": SIZE}, "no frame to lift"),
])
def test_bad_input_gets_one_line(lifter, change, kwargs, message) -> None:
    with pytest.raises(DataError, match=message) as err:
        lifter(change(walker(10)), **kwargs)
    assert "\n" not in str(err.value)


def test_a_3d_recording_is_refused_by_a_lifter(lifter, tmp_path: Path) -> None:
    np.savez(tmp_path / "walk.npz", positions=np.zeros((5, 32, 3)), fps=25.0)
    with pytest.raises(DataError, match="holds 3D 'positions'.*takes 2D keypoints"):
        lifter.predict_file(tmp_path / "walk.npz")
