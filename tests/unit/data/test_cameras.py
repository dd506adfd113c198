"""Cameras: the published rigs, the frame conventions, projection by hand, and intrinsics fitting."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from crisscross.data.cameras import (
    CAMERA_RIGS,
    Camera,
    camera_to_world,
    fit_pinhole,
    get_cameras,
    image_coordinates,
    normalize_screen,
    project,
    quaternion_to_matrix,
    world_to_camera,
)
from crisscross.data.errors import DataError

H36M_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
H36M_CAMERAS = [(s, c) for s in H36M_SUBJECTS for c in CAMERA_RIGS["h36m"][s]]
ALL_CAMERAS = [c for rig in CAMERA_RIGS.values() for cams in rig.values() for c in cams]


def _pinhole(focal=(1000.0, 1000.0), center=(500.0, 500.0), **distortion) -> Camera:
    """A camera at the world origin with the identity orientation."""
    return Camera("test", 1000, 1000, (1, 0, 0, 0), (0, 0, 0), focal, center, **distortion)


def _qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate ``v`` by the unit quaternion ``q`` (w, x, y, z): ``v + 2 (w (u x v) + u x (u x v))``."""
    w, u = q[..., :1], q[..., 1:].expand_as(v)
    uv = torch.linalg.cross(u, v, dim=-1)
    return v + 2 * (w * uv + torch.linalg.cross(u, uv, dim=-1))


# ---------------------------------------------------------------------------------------------------- the rigs


def test_rigs_hold_the_published_subjects_and_cameras():
    h36m, humaneva = CAMERA_RIGS["h36m"], CAMERA_RIGS["humaneva"]
    assert tuple(h36m) == H36M_SUBJECTS
    assert tuple(humaneva) == ("S1", "S2", "S3")
    for cameras in h36m.values():
        assert [c.id for c in cameras] == ["54138969", "55011271", "58860488", "60457274"]
        assert [(c.res_w, c.res_h) for c in cameras] == [(1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002)]
        assert all(c.has_intrinsics for c in cameras)
    for cameras in humaneva.values():
        assert [c.id for c in cameras] == ["C1", "C2", "C3"]
        assert all((c.res_w, c.res_h) == (640, 480) and not c.has_intrinsics for c in cameras)
    s1 = h36m["S1"][0]
    assert s1.focal == (1145.0494384765625, 1143.7811279296875)
    assert s1.translation_mm == (1841.1070556640625, 4955.28466796875, 1563.4454345703125)
    assert h36m["S11"][3].orientation[0] == 0.5894251465797424


def test_get_cameras_strips_split_prefixes():
    assert get_cameras("h36m", "S9") is CAMERA_RIGS["h36m"]["S9"]
    assert get_cameras("humaneva", "Train/S1") is CAMERA_RIGS["humaneva"]["S1"]
    assert get_cameras("humaneva", "Validate/S2") is CAMERA_RIGS["humaneva"]["S2"]
    assert get_cameras("humaneva", "S3") is CAMERA_RIGS["humaneva"]["S3"]


def test_get_cameras_names_the_unknown_rig_or_subject():
    with pytest.raises(DataError, match="camera rig 'h36m' has no subject 'S3'; subjects: S1, S5, S6, S7, S8, S9, S11"):
        get_cameras("h36m", "S3")
    with pytest.raises(DataError, match="'Train/S4'; subjects: S1, S2, S3"):
        get_cameras("humaneva", "Train/S4")
    with pytest.raises(DataError, match="unknown camera rig 'mpi'; rigs: h36m, humaneva") as info:
        get_cameras("mpi", "S1")
    assert "\n" not in str(info.value)


def test_camera_validates_its_fields():
    with pytest.raises(ValueError, match="unit quaternion"):
        Camera("bad", 10, 10, (1.01, 0, 0, 0), (0, 0, 0), None, None)
    Camera("ok", 10, 10, (1.0005, 0, 0, 0), (0, 0, 0), None, None)  # within 1e-3
    with pytest.raises(ValueError, match="resolution"):
        Camera("bad", 0, 10, (1, 0, 0, 0), (0, 0, 0), None, None)
    with pytest.raises(ValueError, match="resolution"):
        Camera("bad", 10, -1, (1, 0, 0, 0), (0, 0, 0), None, None)
    with pytest.raises(ValueError, match="both focal and center"):
        Camera("bad", 10, 10, (1, 0, 0, 0), (0, 0, 0), (5.0, 5.0), None)
    with pytest.raises(ValueError, match="translation_mm needs 3"):
        Camera("bad", 10, 10, (1, 0, 0, 0), (0, 0), None, None)
    camera = _pinhole()
    assert camera.orientation == (1.0, 0.0, 0.0, 0.0) and isinstance(camera.orientation[0], float)
    assert camera.radial == (0.0, 0.0, 0.0) and camera.tangential == (0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        camera.res_w = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------- rotations


def test_quaternion_to_matrix_is_a_proper_rotation():
    quaternions = torch.tensor([c.orientation for c in ALL_CAMERAS], dtype=torch.float64)
    random = torch.randn(20, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    quaternions = torch.cat([quaternions, random])
    matrices = quaternion_to_matrix(quaternions)
    assert matrices.shape == (len(quaternions), 3, 3) and matrices.dtype == torch.float64
    eye = torch.eye(3, dtype=torch.float64).expand_as(matrices)
    torch.testing.assert_close(matrices @ matrices.transpose(-1, -2), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(matrices), torch.ones(len(quaternions), dtype=torch.float64))
    # The matrix rotates vectors the way the quaternion does (q v q*), and a quarter turn about z sends x to y.
    v = torch.randn(len(quaternions), 3, dtype=torch.float64)
    unit = quaternions / quaternions.norm(dim=-1, keepdim=True)
    torch.testing.assert_close((matrices @ v[..., None])[..., 0], _qrot(unit, v))
    quarter = torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], dtype=torch.float64)
    torch.testing.assert_close(quaternion_to_matrix(quarter) @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                               torch.tensor([0.0, 1, 0], dtype=torch.float64))
    assert quaternion_to_matrix(quaternions.float()).dtype == torch.float32


# ---------------------------------------------------------------------------------------------------- frames


@pytest.mark.parametrize(("subject", "camera"), H36M_CAMERAS, ids=[f"{s}-{c.id}" for s, c in H36M_CAMERAS])
def test_world_camera_round_trips(subject, camera):
    generator = torch.Generator().manual_seed(1)
    world = torch.randn(5, 17, 3, generator=generator, dtype=torch.float64) * 2000
    original = world.clone()
    cam = world_to_camera(world, camera)
    assert cam.shape == world.shape and cam.dtype == torch.float64
    torch.testing.assert_close(camera_to_world(cam, camera), world, atol=1e-6, rtol=0)
    torch.testing.assert_close(world_to_camera(camera_to_world(world, camera), camera), world, atol=1e-6, rtol=0)
    assert torch.equal(world, original)  # inputs untouched
    # The camera centre is the camera frame's origin; the VideoPose3D rule (rotate by the inverse quaternion) agrees.
    centre = torch.tensor(camera.translation_mm, dtype=torch.float64)
    torch.testing.assert_close(world_to_camera(centre, camera), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    q = torch.tensor(camera.orientation, dtype=torch.float64)
    q = q / q.norm()
    inverse = q * torch.tensor([1.0, -1, -1, -1], dtype=torch.float64)
    torch.testing.assert_close(cam, _qrot(inverse, world - centre), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("subject", "camera"), H36M_CAMERAS, ids=[f"{s}-{c.id}" for s, c in H36M_CAMERAS])
def test_capture_centre_is_in_view(subject, camera):
    hip_height = torch.tensor([0.0, 0.0, 900.0], dtype=torch.float64)
    cam = world_to_camera(hip_height, camera)
    assert cam[2] > 3000  # in front, several metres away
    u, v = project(cam, camera).tolist()
    assert 0 < u < camera.res_w and 0 < v < camera.res_h
    # The image's "up" is the world's up: a point higher in the world is higher (smaller v) in the image.
    head = project(world_to_camera(hip_height + torch.tensor([0.0, 0.0, 800.0], dtype=torch.float64), camera), camera)
    assert head[1] < v - 100


def test_geometry_keeps_float32():
    camera = CAMERA_RIGS["h36m"]["S9"][2]
    world = torch.randn(4, 3) * 1000
    for out in (world_to_camera(world, camera), camera_to_world(world, camera)):
        assert out.dtype == torch.float32
    pixels = project(world_to_camera(world, camera), camera)
    assert pixels.dtype == torch.float32 and pixels.shape == (4, 2)
    assert normalize_screen(pixels, 1000, 1000).dtype == torch.float32


def test_bad_shapes_are_rejected():
    camera = CAMERA_RIGS["h36m"]["S1"][0]
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        world_to_camera(torch.zeros(4, 2), camera)
    with pytest.raises(TypeError, match="floating-point"):
        camera_to_world(torch.zeros(4, 3, dtype=torch.long), camera)
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
        quaternion_to_matrix(torch.zeros(3))


# ---------------------------------------------------------------------------------------------------- projection


def test_project_pinhole_by_hand():
    point = torch.tensor([100.0, 50.0, 2000.0], dtype=torch.float64)
    # x / z = 0.05, y / z = 0.025 -> 1000 * 0.05 + 500, 1000 * 0.025 + 500
    torch.testing.assert_close(project(point, _pinhole()), torch.tensor([550.0, 525.0], dtype=torch.float64))


def test_project_radial_by_hand():
    point = torch.tensor([[100.0, 50.0, 2000.0]], dtype=torch.float64)
    # r2 = 0.05^2 + 0.025^2 = 0.003125; radial = 1 + 0.1 * 0.003125 = 1.0003125
    # u = 1000 * 0.05 * 1.0003125 + 500 = 550.015625; v = 1000 * 0.025 * 1.0003125 + 500 = 525.0078125
    expected = torch.tensor([[550.015625, 525.0078125]], dtype=torch.float64)
    torch.testing.assert_close(project(point, _pinhole(radial=(0.1, 0.0, 0.0))), expected)


def test_project_tangential_by_hand():
    point = torch.tensor([100.0, 50.0, 2000.0], dtype=torch.float64)
    # tan = 0.01 * 0.05 + 0.02 * 0.025 = 0.001; x' = 0.05 * 1.001 + 0.01 * 0.003125 = 0.05008125,
    # y' = 0.025 * 1.001 + 0.02 * 0.003125 = 0.0250875
    expected = torch.tensor([550.08125, 525.0875], dtype=torch.float64)
    torch.testing.assert_close(project(point, _pinhole(tangential=(0.01, 0.02))), expected)


def test_project_clamps_the_normalised_coordinates():
    wide = torch.tensor([5000.0, -3000.0, 1000.0], dtype=torch.float64)  # x / z = 5, y / z = -3: clamped to 1, -1
    torch.testing.assert_close(project(wide, _pinhole()), torch.tensor([1500.0, -500.0], dtype=torch.float64))


def test_project_needs_intrinsics():
    camera = get_cameras("humaneva", "Train/S1")[0]
    with pytest.raises(ValueError, match="camera 'C1' has no intrinsics"):
        project(torch.tensor([0.0, 0.0, 1000.0]), camera)


def test_normalize_screen_round_trip():
    pixels = torch.rand(6, 15, 2, dtype=torch.float64) * torch.tensor([640.0, 480.0], dtype=torch.float64)
    original = pixels.clone()
    norm = normalize_screen(pixels, 640, 480)
    torch.testing.assert_close(image_coordinates(norm, 640, 480), pixels, atol=1e-9, rtol=0)
    assert torch.equal(pixels, original)
    corners = torch.tensor([[0.0, 0.0], [640.0, 480.0], [320.0, 240.0]], dtype=torch.float64)
    expected = torch.tensor([[-1.0, -0.75], [1.0, 0.75], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(normalize_screen(corners, 640, 480), expected)


# ---------------------------------------------------------------------------------------------------- fitting


def test_fit_pinhole_recovers_known_intrinsics():
    generator = torch.Generator().manual_seed(3)
    points = torch.rand(200, 3, generator=generator, dtype=torch.float64) * torch.tensor([2000.0, 2000.0, 3000.0])
    points = points - torch.tensor([1000.0, 1000.0, -2000.0])  # x, y in [-1, 1] m, z in [2, 5] m
    truth = _pinhole(focal=(1150.0, 1140.0), center=(512.0, 498.0))
    pixels = project(points, truth)
    focal, center, rms = fit_pinhole(points, pixels)
    assert focal == pytest.approx(truth.focal, abs=1e-6)
    assert center == pytest.approx(truth.center, abs=1e-6)
    assert rms < 1e-6
    noisy = pixels + torch.randn(pixels.shape, generator=generator, dtype=torch.float64)  # 1 px per axis
    focal, center, rms = fit_pinhole(points.float(), noisy.float())
    assert focal == pytest.approx(truth.focal, abs=10) and center == pytest.approx(truth.center, abs=3)
    assert 1.0 < rms < 1.8  # sqrt(2) px expected


def test_fit_pinhole_rejects_bad_input():
    points = torch.tensor([[0.0, 0.0, 1000.0], [100.0, 50.0, 2000.0], [-30.0, 40.0, -5.0]], dtype=torch.float64)
    pixels = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="in front of the camera"):
        fit_pinhole(points, pixels)
    with pytest.raises(ValueError, match="same points"):
        fit_pinhole(points, pixels[:2])
    with pytest.raises(ValueError, match="spread"):
        fit_pinhole(points[:1].expand(4, 3), pixels[:1].expand(4, 2))
