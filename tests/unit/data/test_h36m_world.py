"""World-frame Human3.6M motion from synthetic exp-map sequences (no real data)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.data.errors import DataError
from crisscross.data.h36m_world import (
    FOOT_JOINTS,
    Y_UP_TO_Z_UP,
    fit_floor,
    integrate_root,
    level_rotation,
    load_world_sequences,
    world_positions,
)
from crisscross.data.kinematics import rest_pose
from crisscross.data.skeleton import H36M_SKELETON

SK = H36M_SKELETON
FEET = [SK.joint_names.index(name) for name in FOOT_JOINTS]
HIPS, NECK, HEAD_TOP = 0, SK.joint_names.index("Neck"), SK.joint_names.index("HeadSite")
LEFT_HIP, RIGHT_HIP = SK.joint_names.index("LeftUpLeg"), SK.joint_names.index("RightUpLeg")
RIGHT_FOOT, RIGHT_TOE = SK.joint_names.index("RightFoot"), SK.joint_names.index("RightToeBase")
LEG_MM = 442.894612 + 454.206447  # right hip to right ankle, both along -y in the rest pose


def _frames(num_frames: int, step=(0.0, 0.0, 0.0), turn=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A rest-pose sequence: row 0 zero (as in the files), then a constant displacement and rotation increment."""
    values = np.zeros((num_frames, SK.num_angle_values))
    values[1:, 0:3] = step
    values[1:, 3:6] = turn
    return values


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0)))


def test_constant_displacement_integrates_to_a_straight_line_of_length_t_times_v():
    step = np.array([3.0, -4.0, 12.0])  # |v| = 13
    num_steps = 200
    rotations, translations = integrate_root(_frames(num_steps + 1, step))
    assert rotations.shape == (num_steps + 1, 3, 3) and translations.shape == (num_steps + 1, 3)
    np.testing.assert_allclose(rotations, np.broadcast_to(np.eye(3), rotations.shape), atol=1e-15)
    np.testing.assert_allclose(translations[0], 0.0)
    np.testing.assert_allclose(translations, np.arange(num_steps + 1)[:, None] * step, atol=1e-9)
    path = np.linalg.norm(np.diff(translations, axis=0), axis=1).sum()
    assert path == pytest.approx(num_steps * 13.0)
    assert np.linalg.norm(translations[-1] - translations[0]) == pytest.approx(path)  # straight


def test_constant_yaw_increment_walks_a_circle_back_to_the_start():
    increment = 2 * math.pi / 120
    speed = 15.0
    values = _frames(241, (0.0, 0.0, speed), (0.0, increment, 0.0))
    rotations, translations = integrate_root(values)
    radius = speed / (2 * math.sin(increment / 2))  # circumradius of the 120-gon of side `speed`
    for lap_end in (120, 240):
        np.testing.assert_allclose(translations[lap_end], translations[0], atol=1e-6)
        np.testing.assert_allclose(rotations[lap_end], np.eye(3), atol=1e-9)
    assert np.linalg.norm(translations[60] - translations[0]) == pytest.approx(2 * radius, rel=1e-9)
    np.testing.assert_allclose(translations[:, 1], 0.0, atol=1e-9)  # a yaw keeps the path in the xz plane
    centre = translations[:120].mean(axis=0)
    np.testing.assert_allclose(np.linalg.norm(translations[:120] - centre, axis=1), radius, rtol=1e-9)


def test_displacement_is_in_the_root_frame_so_the_subject_walks_where_it_faces():
    values = _frames(40, (0.0, 0.0, 10.0))
    values[1, 3:6] = (0.0, math.pi / 2, 0.0)  # a quarter turn about the vertical, then straight on
    positions = world_positions(values)
    travel = positions[-1, HIPS] - positions[5, HIPS]
    facing = positions[-1, RIGHT_TOE] - positions[-1, RIGHT_FOOT]
    assert _angle_deg(travel[:2], facing[:2]) < 1e-3
    # The turn happens while row 1's displacement still uses the old heading.
    assert np.linalg.norm(travel) == pytest.approx(10.0 * 34, rel=1e-5)


def test_y_up_to_z_up_is_a_proper_rotation():
    np.testing.assert_allclose(Y_UP_TO_Z_UP @ Y_UP_TO_Z_UP.T, np.eye(3), atol=0)
    assert np.linalg.det(Y_UP_TO_Z_UP) == pytest.approx(1.0)
    np.testing.assert_array_equal(Y_UP_TO_Z_UP @ np.array([1.0, 2.0, 3.0]), [1.0, -3.0, 2.0])
    np.testing.assert_array_equal(Y_UP_TO_Z_UP @ np.array([0.0, 1.0, 0.0]), [0.0, 0.0, 1.0])
    swap = np.eye(3)[[0, 2, 1]]  # the reference code's axis swap
    assert np.linalg.det(swap) == pytest.approx(-1.0)


def test_world_keeps_the_body_right_handed():
    positions = world_positions(_frames(10))[0]
    left = positions[LEFT_HIP] - positions[RIGHT_HIP]
    up = positions[NECK] - positions[HIPS]
    forward = positions[RIGHT_TOE] - positions[RIGHT_FOOT]
    # In the FK frame x (left), y (up), z (forward) is right-handed: left x up = forward; a mirror flips it.
    assert _angle_deg(np.cross(left, up), forward) < 1e-4
    assert _angle_deg(up, np.array([0.0, 0.0, 1.0])) < 1e-4


def test_level_rotation_takes_the_normal_to_up():
    rng = np.random.default_rng(0)
    for normal in [*rng.normal(size=(20, 3)), np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0])]:
        rotation = level_rotation(normal)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation @ (normal / np.linalg.norm(normal)), [0.0, 1.0, 0.0], atol=1e-12)


def _tilted_walk(num_frames: int = 400) -> np.ndarray:
    """A rest pose walking a curve after a 0.25 rad pitch and 0.1 rad roll at frame 1 (standing in for the lost
    initial tilt; frame 0 keeps the untilted pose, so checks of the levelled body start at frame 1)."""
    values = _frames(num_frames, (0.0, 0.0, 12.0), (0.0, 0.01, 0.0))
    values[1, 3:6] = (0.25, 0.01, 0.1)
    return values


def test_world_positions_level_the_floor_at_zero_and_centre_the_sequence():
    values = _tilted_walk()
    positions = world_positions(values)
    assert positions.shape == (len(values), SK.num_joints, 3) and positions.dtype == np.float32
    np.testing.assert_allclose(positions[..., :2].reshape(-1, 2).mean(axis=0), 0.0, atol=1e-2)
    positions = positions[1:]
    lowest = positions[:, FEET, 2].min(axis=1)
    np.testing.assert_allclose(lowest, 0.0, atol=1e-2)  # rest-pose feet lie flat on the floor in every frame
    np.testing.assert_allclose(positions[:, RIGHT_FOOT, 2], 0.0, atol=1e-2)
    np.testing.assert_allclose(positions[:, RIGHT_HIP, 2], LEG_MM, atol=1e-2)
    up = positions[:, NECK] - positions[:, HIPS]
    assert max(_angle_deg(u, np.array([0.0, 0.0, 1.0])) for u in up) < 1e-3
    # Bone lengths survive the rigid transforms.
    rest = rest_pose(SK, torch.float64).numpy()
    np.testing.assert_allclose(np.linalg.norm(positions[:, HEAD_TOP] - positions[:, HIPS], axis=1),
                               np.linalg.norm(rest[HEAD_TOP] - rest[HIPS]), rtol=1e-5)


def test_heading_turns_the_sequence_about_the_vertical():
    values = _tilted_walk(120)
    base = world_positions(values).astype(np.float64)
    turned = world_positions(values, heading_rad=math.pi / 2).astype(np.float64)
    np.testing.assert_allclose(turned[..., 0], -base[..., 1], atol=1e-2)
    np.testing.assert_allclose(turned[..., 1], base[..., 0], atol=1e-2)
    np.testing.assert_allclose(turned[..., 2], base[..., 2], atol=1e-3)


def test_fit_floor_ignores_raised_feet():
    rng = np.random.default_rng(1)
    tilt = level_rotation(np.array([0.2, 1.0, -0.3])).T  # takes +y to the tilted normal
    normal = tilt @ np.array([0.0, 1.0, 0.0])
    positions = np.zeros((600, SK.num_joints, 3))
    positions[:, FEET, 0] = rng.uniform(-300, 300, size=(600, 1)) + rng.uniform(-100, 100, size=(600, len(FEET)))
    positions[:, FEET, 2] = rng.uniform(-400, 400, size=(600, 1)) + rng.uniform(-100, 100, size=(600, len(FEET)))
    positions[:, FEET, 1] = rng.normal(0.0, 2.0, size=(600, len(FEET)))
    positions[:200, FEET, 1] += rng.uniform(100, 500, size=(200, 1))  # a third of the frames with both feet up
    positions = positions @ tilt.T + np.array([10.0, -900.0, 40.0])
    fitted, offset = fit_floor(positions)
    assert fitted[1] > 0
    assert _angle_deg(fitted, normal) < 1.0
    assert offset == pytest.approx(normal @ np.array([10.0, -900.0, 40.0]), abs=10.0)


def test_fit_floor_of_a_single_frame_is_horizontal():
    normal, _ = fit_floor(rest_pose(SK, torch.float64).numpy()[None])
    np.testing.assert_array_equal(normal, [0.0, 1.0, 0.0])


def test_world_positions_reject_a_wrong_shape():
    with pytest.raises(ValueError, match="99"):
        world_positions(np.zeros((10, 98)))
    with pytest.raises(ValueError, match="99"):
        world_positions(np.zeros((0, 99)))


def test_load_world_sequences(h36m_dir: Path):
    sequences = load_world_sequences(h36m_dir, ["S1", "S11"], ["walking", "eating"])
    assert ("S11", "eating", 1) not in sequences  # absent from the fixture
    assert len(sequences) == 7
    assert next(iter(sequences)) == ("S1", "walking", 1)
    for positions in sequences.values():
        assert positions.ndim == 3 and positions.shape[1:] == (32, 3) and positions.dtype == np.float32
        assert np.isfinite(positions).all()
    only_walking = load_world_sequences(h36m_dir / "h3.6m" / "dataset", ["S1"], ["walking"])
    assert set(only_walking) == {("S1", "walking", 1), ("S1", "walking", 2)}


def test_load_world_sequences_errors(h36m_dir: Path, tmp_path: Path):
    with pytest.raises(DataError, match="unknown H3.6M action"):
        load_world_sequences(h36m_dir, ["S1"], ["jogging"])
    with pytest.raises(DataError, match="S9"):
        load_world_sequences(h36m_dir, ["S9"])
    with pytest.raises(DataError, match="no Human3.6M folder"):
        load_world_sequences(tmp_path / "nowhere", ["S1"])
    with pytest.raises(DataError, match="no H3.6M sequence file"):
        load_world_sequences(h36m_dir, ["S1"], ["sitting"])
    bad = h36m_dir / "h3.6m" / "dataset" / "S1" / "walking_1.txt"
    bad.write_text(bad.read_text().replace(",", ";", 1))
    with pytest.raises(DataError, match=r"walking_1\.txt:1"):
        load_world_sequences(h36m_dir, ["S1"], ["walking"])
