"""Rodrigues, its inverse, and forward kinematics against hand-computed poses."""

import math

import torch

from crisscross.data.kinematics import expmap_to_rotmat, forward_kinematics, rest_pose, rotmat_to_expmap
from crisscross.data.skeleton import CMU_SKELETON, H36M_SKELETON

H36M = H36M_SKELETON


def test_expmap_zero_is_identity_and_differentiable():
    r = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    rot = expmap_to_rotmat(r)
    assert torch.equal(rot.detach(), torch.eye(3, dtype=torch.float64).expand(4, 3, 3))
    rot.sum().backward()
    assert torch.isfinite(r.grad).all()


def test_expmap_rotations_are_orthonormal_with_unit_determinant():
    r = torch.randn(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    rot = expmap_to_rotmat(r)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye.expand_as(rot), atol=1e-12, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(1000, dtype=torch.float64))


def test_expmap_quarter_turn_about_z():
    rot = expmap_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(rot, expected, atol=1e-15, rtol=0)


def test_rotmat_to_expmap_round_trip_including_near_pi():
    gen = torch.Generator().manual_seed(1)
    axes = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64, generator=gen), dim=-1)
    angles = torch.rand(500, 1, dtype=torch.float64, generator=gen) * (math.pi - 1e-6)
    angles[:5] = math.pi - 1e-9
    angles[5:10] = 1e-9
    r = axes * angles
    torch.testing.assert_close(expmap_to_rotmat(rotmat_to_expmap(expmap_to_rotmat(r))), expmap_to_rotmat(r))
    torch.testing.assert_close(rotmat_to_expmap(expmap_to_rotmat(r[5:])), r[5:])


def test_rest_pose_is_summed_offsets():
    angles = torch.zeros(3, 99, dtype=torch.float64)
    positions = forward_kinematics(angles, H36M)
    torch.testing.assert_close(positions[0], rest_pose(H36M, torch.float64))
    right_ankle = positions[0, 3]
    torch.testing.assert_close(right_ankle, torch.tensor([-132.948591, -442.894612 - 454.206447, 0.0],
                                                         dtype=torch.float64))
    head_top = positions[0, 15]
    assert abs(float(head_top[1]) - (0.1 + 233.383263 + 257.077681 + 121.134938 + 115.002227)) < 1e-9


def test_single_knee_rotation_moves_the_ankle_as_computed_by_hand():
    # 90 degrees about z at the right knee (joint 2, exp-map values 3 + 3 * 2 = 9:12).
    angles = torch.zeros(1, 99, dtype=torch.float64)
    angles[0, 11] = math.pi / 2
    positions = forward_kinematics(angles, H36M)[0]
    knee = torch.tensor([-132.948591, -442.894612, 0.0], dtype=torch.float64)
    torch.testing.assert_close(positions[2], knee)  # the knee itself does not move
    # Row-vector convention: offset (0, -454.206447, 0) @ Rz(90) = -454.206447 * (row 1 of Rz) = (-454.2, 0, 0).
    ankle = knee + torch.tensor([-454.206447, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(positions[3], ankle, atol=1e-9, rtol=0)
    torch.testing.assert_close(positions[4], ankle + torch.tensor([0.0, 0.0, 162.767078], dtype=torch.float64),
                               atol=1e-9, rtol=0)
    torch.testing.assert_close(positions[7:], rest_pose(H36M, torch.float64)[7:])  # other limbs untouched


def test_hip_flexion_moves_the_foot_forward():
    angles = torch.zeros(1, 99, dtype=torch.float64)
    angles[0, 3 + 3 * 1] = 0.5  # +x at the right hip joint
    positions = forward_kinematics(angles, H36M)[0]
    assert positions[3, 2] > 100.0  # +z is forward


def test_global_translation_and_rotation_are_ignored_and_input_untouched():
    gen = torch.Generator().manual_seed(2)
    angles = torch.randn(5, 99, dtype=torch.float64, generator=gen) * 0.3
    zeroed = angles.clone()
    zeroed[:, :6] = 0
    before = angles.clone()
    torch.testing.assert_close(forward_kinematics(angles, H36M), forward_kinematics(zeroed, H36M))
    assert torch.equal(angles, before)
    assert torch.equal(forward_kinematics(angles, H36M)[:, 0], torch.zeros(5, 3, dtype=torch.float64))


def _reference_fk_one_frame(frame: torch.Tensor, skeleton) -> torch.Tensor:
    """Joint-by-joint FK of one frame, written independently as a check of the vectorised version."""
    rots, pos = [], []
    offsets = skeleton.offsets_tensor()
    for j, p in enumerate(skeleton.parents):
        r = expmap_to_rotmat(frame[3 + 3 * j: 6 + 3 * j]) if j > 0 else torch.eye(3, dtype=torch.float64)
        if p < 0:
            rots.append(r)
            pos.append(offsets[j])
        else:
            pos.append(offsets[j] @ rots[p] + pos[p])
            rots.append(r @ rots[p])
    return torch.stack(pos)


def test_vectorised_fk_matches_joint_by_joint_reference():
    gen = torch.Generator().manual_seed(3)
    for skeleton in (H36M, CMU_SKELETON):
        angles = torch.randn(4, skeleton.num_angle_values, dtype=torch.float64, generator=gen) * 0.5
        batch = forward_kinematics(angles, skeleton)
        for t in range(4):
            torch.testing.assert_close(batch[t], _reference_fk_one_frame(angles[t], skeleton))


def test_fk_preserves_bone_lengths():
    angles = torch.randn(8, 99, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    positions = forward_kinematics(angles, H36M)
    offsets = H36M.offsets_tensor().norm(dim=-1)
    for j, p in enumerate(H36M.parents):
        if p >= 0:
            torch.testing.assert_close((positions[:, j] - positions[:, p]).norm(dim=-1), offsets[j].expand(8))
