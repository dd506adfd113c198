"""The Human3.6M lifting source (VideoPose3D npz files) on a small folder, and the detector-like 2D noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import videopose3d_fixtures as fx

from crisscross.data.cameras import get_cameras, world_to_camera
from crisscross.data.datasets import load_motion
from crisscross.data.errors import DataError
from crisscross.data.lifting import LiftingSet
from crisscross.data.lifting_sources import _NOISE_STD_PX, detector_noise
from crisscross.data.skeleton import H36M_17_SKELETON, HUMANEVA_15_SKELETON
from crisscross.data.videopose3d import H36M_17_FROM_32

SUBJECTS = ("S1", "S5", "S9", "S11")
ACTIONS = ("Walking 1", "Directions", "Eating")
EXTRA_2D = 2  # the 2D videos are longer than the 3D, as the real ones can be


def _write_h36m(folder: Path, name_2d: str = "data_2d_h36m_gt.npz", seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    positions_3d: dict = {s: {} for s in SUBJECTS}
    positions_2d: dict = {s: {} for s in SUBJECTS}
    for s, subject in enumerate(SUBJECTS):
        for a, action in enumerate(ACTIONS):
            length = 6 + 2 * s + a
            positions_3d[subject][action] = rng.normal(0.0, 0.5, (length, 32, 3)).astype(np.float32)
            positions_2d[subject][action] = [rng.uniform(0, 1000, (length + EXTRA_2D, 17, 2)).astype(np.float32)
                                             for _ in range(4)]
    fx.write_3d(folder / "data_3d_h36m.npz", positions_3d)
    fx.write_2d(folder / name_2d, positions_2d, fx.H36M_METADATA)
    return positions_3d, positions_2d


@pytest.fixture(scope="module")
def h36m_npz(tmp_path_factory) -> tuple[Path, dict, dict]:
    folder = tmp_path_factory.mktemp("h36m_npz")
    return folder, *_write_h36m(folder)


def test_test_split_is_s9_and_s11_without_s11_directions(h36m_npz):
    folder, positions_3d, _ = h36m_npz
    data = load_motion("h36m-npz", split="test", data_dir=folder)
    assert isinstance(data, LiftingSet) and data.dataset == "h36m-npz" and data.split == "test"
    assert data.skeleton.num_joints == 17 and data.keypoints.shape[1:] == (17, 2) and data.fps == 50
    assert data.subjects() == ["S9", "S11"]
    pairs = {(k.subject, k.action, k.take) for k in data.keys}
    assert pairs == {("S9", "Walking", "1"), ("S9", "Directions", ""), ("S9", "Eating", ""),
                     ("S11", "Walking", "1"), ("S11", "Eating", "")}
    for subject, action, take in pairs:
        cameras = [k.camera for k in data.keys if (k.subject, k.action, k.take) == (subject, action, take)]
        assert cameras == [c.id for c in get_cameras("h36m", subject)]
    expected_frames = 4 * sum(len(p) for s in ("S9", "S11") for a, p in positions_3d[s].items()
                              if (s, a) != ("S11", "Directions"))
    assert data.num_frames == expected_frames  # the 2D is cut to the 3D length
    assert torch.equal(data.positions[:, 0], torch.zeros(data.num_frames, 3))


def test_train_split_is_s1_and_s5(h36m_npz):
    data = load_motion("h36m-npz", split="train", data_dir=h36m_npz[0])
    assert data.subjects() == ["S1", "S5"] and data.actions() == ["Walking", "Directions", "Eating"]
    assert len(data.keys) == 2 * 3 * 4


def test_values_are_the_17_joint_camera_frame_poses_and_normalised_pixels(h36m_npz):
    folder, positions_3d, positions_2d = h36m_npz
    data = load_motion("h36m-npz", split="test", data_dir=folder, actions=["Walking"])
    assert data.actions() == ["Walking"] and len(data.keys) == 8
    i = next(i for i, k in enumerate(data.keys) if (k.subject, k.camera) == ("S11", "58860488"))
    camera = get_cameras("h36m", "S11")[2]
    assert camera.id == "58860488"
    start, length = int(data.seq_starts[i]), int(data.seq_lengths[i])
    world = torch.as_tensor(positions_3d["S11"]["Walking 1"][:, list(H36M_17_FROM_32)], dtype=torch.float64) * 1000
    assert length == len(world)
    in_camera = world_to_camera(world, camera)
    expected = in_camera - in_camera[:, :1]
    torch.testing.assert_close(data.positions[start:start + length].double(), expected, rtol=1e-5, atol=1e-2)
    pixels = positions_2d["S11"]["Walking 1"][2][:length]
    normalised = pixels / camera.res_w * 2 - [1, camera.res_h / camera.res_w]
    np.testing.assert_allclose(data.keypoints[start:start + length].numpy(), normalised, rtol=1e-5, atol=1e-6)


def test_cpn_detections_are_read_from_their_own_file(tmp_path):
    _, positions_2d = _write_h36m(tmp_path, "data_2d_h36m_cpn_ft_h36m_dbb.npz", seed=3)
    data = load_motion("h36m-npz-cpn", split="test", data_dir=tmp_path)
    assert data.dataset == "h36m-npz-cpn" and data.subjects() == ["S9", "S11"]
    camera = get_cameras("h36m", "S9")[0]
    first = positions_2d["S9"]["Walking 1"][0][0] / camera.res_w * 2 - [1, camera.res_h / camera.res_w]
    np.testing.assert_allclose(data.keypoints[0].numpy(), first, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="data_2d_h36m_gt.npz"):
        load_motion("h36m-npz", split="test", data_dir=tmp_path)


def _gross(noise: np.ndarray, threshold: float = 12.0) -> np.ndarray:
    """Bool[T, J]: frames where the noise jumps away from both neighbours' AR(1) prediction (a gross error)."""
    rho = 0.9
    forward = np.full(noise.shape[:2], np.inf)
    backward = np.full(noise.shape[:2], np.inf)
    forward[1:] = np.linalg.norm(noise[1:] - rho * noise[:-1], axis=-1)
    backward[:-1] = np.linalg.norm(noise[:-1] - rho * noise[1:], axis=-1)
    return np.minimum(forward, backward) > threshold


@pytest.fixture(scope="module")
def long_noise() -> np.ndarray:
    return detector_noise(20_000, H36M_17_SKELETON, seed=7)


def test_detector_noise_is_deterministic_for_a_seed():
    a = detector_noise(50, H36M_17_SKELETON, seed=1)
    assert a.shape == (50, 17, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, detector_noise(50, H36M_17_SKELETON, seed=1))
    assert not np.allclose(a, detector_noise(50, H36M_17_SKELETON, seed=2))
    assert detector_noise(7, HUMANEVA_15_SKELETON, seed=1).shape == (7, 15, 2)


def test_detector_noise_has_the_documented_size(long_noise):
    gross = _gross(long_noise)
    # 1% of joints carry a gross error (20 to 60 px)
    assert 0.008 < gross.mean() < 0.012
    sizes = np.linalg.norm(long_noise[gross], axis=-1)
    assert np.median(sizes) == pytest.approx(40, abs=5) and sizes.max() < 60 + 40
    # the smooth part: per joint, within 20% of the documented standard deviation (stationary AR(1))
    for j, name in enumerate(H36M_17_SKELETON.joint_names):
        clean = long_noise[~gross[:, j], j]
        assert np.sqrt(np.mean(clean ** 2)) == pytest.approx(_NOISE_STD_PX[name], rel=0.2), name
    assert abs(long_noise[~gross].mean()) < 0.5
    # extremities are noisier than the trunk
    std = {n: np.sqrt(np.mean(long_noise[~gross[:, j], j] ** 2)) for j, n in enumerate(H36M_17_SKELETON.joint_names)}
    assert std["LeftWrist"] > std["LeftElbow"] > std["Hips"] and std["RightAnkle"] > std["RightKnee"] > std["Spine"]


def test_detector_noise_is_smooth(long_noise):
    gross = _gross(long_noise)
    both = ~gross[1:] & ~gross[:-1]  # pairs of consecutive frames without a gross error
    for j in range(17):
        a, b = long_noise[:-1, j][both[:, j]], long_noise[1:, j][both[:, j]]
        for axis in range(2):
            lag1 = np.corrcoef(a[:, axis], b[:, axis])[0, 1]
            assert lag1 == pytest.approx(0.9, abs=0.03), (j, axis)
    # far apart frames are nearly independent (0.9 ** 50 < 0.01)
    far = np.corrcoef(long_noise[:-50, 0, 0], long_noise[50:, 0, 0])[0, 1]
    assert abs(far) < 0.15
