"""World-frame Human3.6M motion rebuilt from the real exp-map files, and projected with the real cameras.

Run with ``-s`` to see the measured figures (path lengths, removed tilt, feet heights, projection statistics).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.data.h36m import find_h36m_root, h36m_file, read_expmap_text
from crisscross.data.h36m_world import (
    FOOT_JOINTS,
    fit_floor,
    integrate_root,
    integrated_positions,
    load_world_sequences,
)
from crisscross.data.skeleton import H36M_SKELETON

pytestmark = pytest.mark.realdata

SK = H36M_SKELETON
SUBJECTS = ("S1", "S9", "S11")
FEET = [SK.joint_names.index(name) for name in FOOT_JOINTS]
HIPS, NECK, HEAD = (SK.joint_names.index(name) for name in ("Hips", "Neck", "Head"))
HEAD_TOP = SK.joint_names.index("HeadSite")
ANKLES = [SK.joint_names.index(name) for name in ("RightFoot", "LeftFoot")]
UP = np.array([0.0, 0.0, 1.0])


def _root(h36m_root: Path) -> Path:
    root = find_h36m_root(h36m_root)
    assert root is not None, f"{h36m_root}: no S<k> folders"
    return root


def _seated_sequence(root: Path, subject: str) -> tuple[str, int]:
    """sitting_1, or the first sittingdown file where sitting_1 is absent."""
    for action, subaction in (("sitting", 1), ("sittingdown", 1), ("sittingdown", 2)):
        if h36m_file(root, subject, action, subaction).is_file():
            return action, subaction
    pytest.skip(f"{subject}: no sitting or sittingdown file")


@pytest.fixture(scope="module")
def world(h36m_root: Path) -> dict[tuple[str, str, int], np.ndarray]:
    """World positions of walking_1 and the seated sequence of S1, S9 and S11 (50 Hz, mm, z up)."""
    root = _root(h36m_root)
    sequences = {}
    for subject in SUBJECTS:
        seated = _seated_sequence(root, subject)
        loaded = load_world_sequences(root, [subject], ["walking", seated[0]])
        for key in ((subject, "walking", 1), (subject, *seated)):
            sequences[key] = loaded[key]
    return sequences


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))))


def test_integrated_walking_paths_are_plausible(h36m_root: Path):
    root = _root(h36m_root)
    for subject in SUBJECTS:
        values = read_expmap_text(h36m_file(root, subject, "walking", 1), SK.num_angle_values)
        _, translations = integrate_root(values)
        steps = np.linalg.norm(np.diff(translations, axis=0), axis=1)
        path_m, seconds = steps.sum() / 1000.0, len(steps) / 50.0
        tilt = _angle_deg(fit_floor(integrated_positions(values))[0], np.array([0.0, 1.0, 0.0]))
        print(f"\n{subject} walking_1: {path_m:.1f} m in {seconds:.1f} s ({steps.mean():.1f} mm/frame, "
              f"{path_m / seconds:.2f} m/s), floor tilt removed {tilt:.1f} deg")
        assert 0.4 < path_m / seconds < 1.6
        assert tilt < 45.0
        if subject == "S9":
            assert 30.0 < path_m < 70.0
        if subject == "S1":
            assert 10.0 < steps.mean() < 16.0  # about 12.7 mm per frame


def test_levelled_walks_stay_in_the_capture_volume_on_a_flat_floor(world):
    for subject in SUBJECTS:
        hips = world[(subject, "walking", 1)][:, HIPS]
        extent = hips[:, :2].max(axis=0) - hips[:, :2].min(axis=0)
        height = np.percentile(hips[:, 2], [5, 95])
        print(f"\n{subject} walking_1: hips cover {extent[0]:.0f} x {extent[1]:.0f} mm, "
              f"hips height p5-p95 {height[0]:.0f}-{height[1]:.0f} mm")
        assert (extent < 6000.0).all()
        assert height[1] - height[0] < 80.0  # the path does not climb: the floor is level


def test_feet_rest_on_the_floor(world):
    for key, positions in world.items():
        lowest = positions[:, FEET, 2].min(axis=1)
        p5, p50 = np.percentile(lowest, [5, 50])
        print(f"\n{key}: lowest foot p5 {p5:.1f} mm, median {p50:.1f} mm, min {lowest.min():.1f} mm")
        assert abs(p5) < 30.0
        assert abs(p50) < 30.0


def test_head_above_hips_in_standing_frames(world):
    for key, positions in world.items():
        legs = np.linalg.norm(positions[:, HIPS, None] - positions[:, ANKLES], axis=-1).min(axis=1)
        standing = (positions[:, HIPS, 2] > 800.0) & (legs > 860.0)  # hips high, both legs straight
        if key[1] == "walking":
            assert standing.mean() > 0.2
        if not standing.any():
            continue
        rise = positions[standing, HEAD, 2] - positions[standing, HIPS, 2]
        low, mid, high = np.percentile(rise, [5, 50, 95])
        print(f"\n{key}: {standing.sum()} standing frames, head above hips p5 {low:.0f} median {mid:.0f} "
              f"p95 {high:.0f} mm")
        assert 400.0 <= low and high <= 800.0


def test_walking_is_upright(world):
    for subject in SUBJECTS:
        positions = world[(subject, "walking", 1)]
        angle = _angle_deg((positions[:, NECK] - positions[:, HIPS]).mean(axis=0), UP)
        print(f"\n{subject} walking_1: mean hips-to-neck vector {angle:.1f} deg from vertical")
        assert angle < 20.0


def test_walking_projects_inside_the_real_cameras(world):
    cameras = pytest.importorskip("crisscross.data.cameras")
    for subject in SUBJECTS:
        positions = torch.from_numpy(world[(subject, "walking", 1)]).to(torch.float64)
        heights, depths, inside_all = [], [], []
        for camera in cameras.get_cameras("h36m", subject):
            x_cam = cameras.world_to_camera(positions, camera)
            pixels = cameras.project(x_cam, camera).numpy()
            u, v = pixels[..., 0], pixels[..., 1]
            inside = (u >= 0) & (u < camera.res_w) & (v >= 0) & (v < camera.res_h)
            depth = x_cam[..., 2].numpy()
            height = v[:, FEET].max(axis=1) - v[:, HEAD_TOP]  # top of the head to the lowest foot, along v
            print(f"\n{subject} walking_1 camera {camera.id}: {inside.mean():.2%} inside, depth "
                  f"{depth.min() / 1000:.2f}-{depth.max() / 1000:.2f} m, height {np.median(height):.0f} px "
                  f"({height.min():.0f}-{height.max():.0f})")
            heights.append(height)
            depths.append(depth)
            inside_all.append(inside)
            assert inside.mean() >= 0.99
            assert depth.min() > 2000.0 and depth.max() < 8000.0
        heights_px = np.concatenate(heights)
        depth_mm = np.concatenate([d.reshape(-1) for d in depths])
        share = np.concatenate([i.reshape(-1) for i in inside_all]).mean()
        print(f"{subject} walking_1, 4 cameras: {share:.2%} of joints inside, person height median "
              f"{np.median(heights_px):.0f} px (min {heights_px.min():.0f}, max {heights_px.max():.0f}), depth "
              f"{depth_mm.min() / 1000:.2f}-{depth_mm.max() / 1000:.2f} m")
        assert len(heights) == 4
