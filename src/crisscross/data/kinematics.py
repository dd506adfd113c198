"""Exponential maps, rotation matrices and forward kinematics in the motion-forecasting literature's convention.

Follows the torch FK used by LTD / HisRepItself / MSR-GCN / PGBIG (``utils/forward_kinematics.py::fkl_torch`` after
Martinez et al.), written from scratch and vectorised over frames:

* poses are **row vectors**; each joint's global rotation is ``R_global[i] = R_local[i] @ R_global[parent[i]]`` and its
  position is ``p[i] = offset[i] @ R_global[parent[i]] + p[parent[i]]``;
* a frame of the text format holds the global translation (values 0:3), then one exp-map per joint starting with the
  root (values 3:6); values 0:6 are zeroed before FK (global translation and rotation removed), so the root sits at the
  origin and the body is expressed in the pelvis frame (``y`` up, ``x`` to the subject's left, ``z`` forward).

With the root rotation zeroed this equals ``fkl_torch``, which in addition never composes the root rotation into its
children. Rodrigues' formula is the usual one, ``R = I + sin(t) K + (1 - cos(t)) K^2`` with ``K`` the cross-product
matrix of the unit axis, evaluated with Taylor expansions near ``t = 0`` so it is exact (and differentiable) there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from crisscross.data.skeleton import Skeleton

__all__ = [
    "expmap_to_rotmat",
    "forward_kinematics",
    "forward_kinematics_rotmat",
    "rest_pose",
    "rotmat_to_expmap",
    "single_threaded_torch",
]

_SMALL_ANGLE = 1e-4


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run the enclosed torch CPU work on one intra-op thread, then restore the previous thread count.

    Preprocessing does many small element-wise ops (tens of thousands of 3x3 rotations). Split across threads they
    gain nothing, and when other processes keep the cores busy each op waits for its worker threads: measured on a
    loaded 2-core machine, FK of one H3.6M file took 0.74 s on 2 threads and 0.01 s on one.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def expmap_to_rotmat(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from exponential maps (axis times angle in radians), by Rodrigues' formula.

    Args:
        r: Tensor[..., 3] exp-maps.

    Returns:
        Tensor[..., 3, 3], ``I + a K + b K @ K`` with ``K`` the cross matrix of ``r``, ``a = sin(t)/t`` and
        ``b = (1 - cos t)/t^2``; both use their Taylor series below ``t = 1e-4`` so ``r = 0`` gives the identity.
    """
    x, y, z = r.unbind(-1)
    theta_sq = x * x + y * y + z * z
    small = theta_sq < _SMALL_ANGLE**2
    safe_theta = torch.where(small, torch.ones_like(theta_sq), theta_sq).sqrt()
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(safe_theta) / safe_theta)
    b = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(safe_theta)) / (safe_theta * safe_theta))
    # K @ K = r r^T - |r|^2 I, so every entry is written out directly (no matmul, one stack).
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    rot = torch.stack(
        (
            1.0 - b * (y * y + z * z), bxy - a * z, bxz + a * y,
            bxy + a * z, 1.0 - b * (x * x + z * z), byz - a * x,
            bxz - a * y, byz + a * x, 1.0 - b * (x * x + y * y),
        ),
        dim=-1,
    )
    return rot.reshape(*r.shape[:-1], 3, 3)


def rotmat_to_expmap(rot: torch.Tensor) -> torch.Tensor:
    """Exponential maps (angle in [0, pi]) of rotation matrices; the inverse of :func:`expmap_to_rotmat`.

    Goes through a unit quaternion chosen by Shepperd's rule (largest of w, x, y, z first), which stays accurate
    for every angle including pi.

    Args:
        rot: Tensor[..., 3, 3] rotation matrices.

    Returns:
        Tensor[..., 3] exp-maps.
    """
    m = rot
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Four candidate quaternions (w, x, y, z), each well conditioned where its leading term is largest.
    candidates = torch.stack(
        (
            torch.stack((1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1]), -1),
            torch.stack((m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                         m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]), -1),
            torch.stack((m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                         1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]), -1),
            torch.stack((m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                         1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]), -1),
        ),
        dim=-2,
    )  # [..., 4 candidates, 4]
    leading = torch.stack((1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                           1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                           1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]), -1)
    best = leading.argmax(-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)  # w >= 0 keeps the angle in [0, pi]
    w, xyz = quat[..., 0], quat[..., 1:]
    sin_half = xyz.norm(dim=-1)
    angle = 2.0 * torch.atan2(sin_half, w)
    small = sin_half < 1e-8
    scale = torch.where(small, 2.0 / w.clamp_min(1e-12), angle / torch.where(small, torch.ones_like(sin_half),
                                                                               sin_half))
    return xyz * scale[..., None]


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``; on CPU without autograd through numpy, whose stacked 3x3 products avoid torch's per-call
    thread dispatch (10-100x faster for these tiny matrices, and unaffected by other busy processes)."""
    if a.device.type == "cpu" and b.device.type == "cpu" and not (a.requires_grad or b.requires_grad):
        return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
    return a @ b


def forward_kinematics_rotmat(local_rot: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Joint positions from local rotation matrices (row-vector convention, root at the origin).

    Args:
        local_rot: Tensor[T, J, 3, 3] local rotation of every joint; the root's rotation is applied as given.
        skeleton: kinematic tree and offsets.

    Returns:
        Tensor[T, J, 3] positions in millimetres, same dtype as ``local_rot``.
    """
    num_frames, num_joints = local_rot.shape[:2]
    if num_joints != skeleton.num_joints:
        raise ValueError(f"expected {skeleton.num_joints} joints for skeleton {skeleton.name!r}, got {num_joints}")
    offsets = skeleton.offsets_tensor(dtype=local_rot.dtype, device=local_rot.device)
    global_rot: list[torch.Tensor] = []
    positions: list[torch.Tensor] = []
    for joint, parent in enumerate(skeleton.parents):
        if parent < 0:
            global_rot.append(local_rot[:, joint])
            positions.append(offsets[joint].expand(num_frames, 3))
            continue
        parent_rot = global_rot[parent]
        positions.append(_matmul(offsets[joint], parent_rot) + positions[parent])  # [3] @ [T, 3, 3] -> [T, 3]
        global_rot.append(_matmul(local_rot[:, joint], parent_rot))
    return torch.stack(positions, dim=1)


def forward_kinematics(angles: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Joint positions (mm, root-centred) from frames of the exp-map text format.

    Args:
        angles: Tensor[T, 3 + 3 J]: global translation, then one exp-map per joint (root first). Values 0:6 are
            ignored (treated as zero), exactly like the literature's ``the_seq[:, 0:6] = 0``; the input is not modified.
        skeleton: kinematic tree and offsets (J joints).

    Returns:
        Tensor[T, J, 3] positions in millimetres in the pelvis frame, same dtype as ``angles``.
    """
    if angles.ndim != 2 or angles.shape[1] != skeleton.num_angle_values:
        raise ValueError(
            f"expected angles of shape [T, {skeleton.num_angle_values}] for skeleton {skeleton.name!r}, "
            f"got {tuple(angles.shape)}"
        )
    expmaps = angles[:, 3:].reshape(angles.shape[0], skeleton.num_joints, 3).clone()
    expmaps[:, 0] = 0.0  # global rotation removed (values 3:6)
    return forward_kinematics_rotmat(expmap_to_rotmat(expmaps), skeleton)


def rest_pose(skeleton: Skeleton, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Positions with every rotation zero: each joint at the sum of the offsets along its chain.

    Returns:
        Tensor[J, 3] in millimetres.
    """
    offsets = skeleton.offsets_tensor(dtype=torch.float64)
    positions = torch.zeros_like(offsets)
    for joint, parent in enumerate(skeleton.parents):
        positions[joint] = offsets[joint] + (positions[parent] if parent >= 0 else 0.0)
    return positions.to(dtype)
