"""The body frame: world motion into a skeleton's pelvis frame and back, against the literature's own data."""

from __future__ import annotations

import numpy as np
import pytest

from crisscross.data.body_frame import body_frames, detect_up_axis, hip_joints, rest_frame
from crisscross.data.datasets import load_motion
from crisscross.data.skeleton import CMU_SKELETON, H36M_17_SKELETON, H36M_SKELETON

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _turn(degrees: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def body() -> np.ndarray:
    """Array[40, 32, 3] mm: embedded motion, computed like the literature's (root translation and rotation zeroed)."""
    return load_motion("synthetic", "test").sequence(0).numpy().astype(np.float64)[:40]


def _to_world(body: np.ndarray, heading: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body-frame motion placed in a z-up world: a per-frame heading and a walk along a line."""
    frames = body.shape[0]
    rotations = np.stack([_turn(d) @ Y_UP_TO_Z_UP for d in heading])
    path = np.stack([np.linspace(0, 2500, frames), np.linspace(300, -900, frames), np.full(frames, 950.0)], axis=1)
    return np.einsum("tjc,tdc->tjd", body, rotations) + path[:, None], rotations, path


def test_hips_and_rest_frame_of_the_built_in_skeletons() -> None:
    assert hip_joints(H36M_SKELETON) == (6, 1)  # LeftUpLeg, RightUpLeg
    np.testing.assert_allclose(rest_frame(H36M_SKELETON), np.eye(3), atol=1e-5)  # hips on x, y up
    assert [CMU_SKELETON.joint_names[j] for j in hip_joints(CMU_SKELETON)] == ["LeftUpLeg", "RightUpLeg"]
    assert hip_joints(H36M_17_SKELETON) is None  # a keypoint layout has no rest offsets
    with pytest.raises(ValueError, match="h36m17"):
        rest_frame(H36M_17_SKELETON)


def test_world_motion_returns_to_the_literature_body_frame(body: np.ndarray) -> None:
    heading = np.linspace(-170, 200, body.shape[0])  # turning on the spot while walking
    world, _, path = _to_world(body, heading)
    frames = body_frames(world, H36M_SKELETON)
    np.testing.assert_allclose(frames.root, path + world[:, 0] - path, atol=1e-9)
    np.testing.assert_allclose(frames.apply(world), body, atol=1e-6)
    # and back: invert(apply(x)) is x, frame by frame
    back = np.stack([frames.invert(frames.apply(world)[t], t) for t in range(body.shape[0])])
    np.testing.assert_allclose(back, world, atol=1e-6)


def test_up_axis_is_detected_with_its_sign(body: np.ndarray) -> None:
    world, _, _ = _to_world(body, np.zeros(body.shape[0]))
    np.testing.assert_array_equal(detect_up_axis(world, H36M_SKELETON), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(detect_up_axis(-body, H36M_SKELETON), [0.0, -1.0, 0.0])
    np.testing.assert_array_equal(detect_up_axis(body, H36M_SKELETON), [0.0, 1.0, 0.0])


def test_a_declared_up_direction_is_used_instead_of_detection(body: np.ndarray) -> None:
    world, _, _ = _to_world(body, np.full(body.shape[0], 30.0))
    declared = body_frames(world, H36M_SKELETON, up=np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(declared.apply(world), body, atol=1e-6)
    wrong = body_frames(world, H36M_SKELETON, up=np.array([0.0, 1.0, 0.0]))
    assert np.abs(wrong.apply(world) - body).max() > 100.0


def test_translation_only_keeps_the_orientation(body: np.ndarray) -> None:
    frames = body_frames(body + 500.0, H36M_SKELETON, translation_only=True)
    np.testing.assert_allclose(frames.to_body, np.broadcast_to(np.eye(3), frames.to_body.shape))
    np.testing.assert_allclose(frames.apply(body + 500.0), body - body[:, :1], atol=1e-9)


def test_a_vertical_hip_line_takes_the_nearest_defined_frame(body: np.ndarray) -> None:
    lying = body.copy()
    lying[7, 6] = lying[7, 0] + np.array([0.0, 130.0, 0.0])  # left hip straight above the root in frame 7
    lying[7, 1] = lying[7, 0] - np.array([0.0, 130.0, 0.0])
    frames = body_frames(lying, H36M_SKELETON, up=np.array([0.0, 1.0, 0.0]))
    assert frames.undefined_frames == 1
    np.testing.assert_allclose(frames.to_body[7], frames.to_body[6])
    lying[:, 6], lying[:, 1] = lying[:, 0] + [0.0, 130.0, 0.0], lying[:, 0] - [0.0, 130.0, 0.0]
    with pytest.raises(ValueError, match="in every frame"):
        body_frames(lying, H36M_SKELETON, up=np.array([0.0, 1.0, 0.0]))


def test_a_per_frame_up_direction(body: np.ndarray) -> None:
    up = np.tile([0.0, 2.0, 0.0], (body.shape[0], 1))  # need not be unit length
    np.testing.assert_allclose(body_frames(body, H36M_SKELETON, up=up).apply(body), body, atol=1e-6)
