"""World-frame Human3.6M motion rebuilt from the exp-map text files, for projection with the real cameras.

The forecasting pipeline (``h36m.py``, ``kinematics.py``) zeroes values 0:6 of every frame and works in the pelvis
frame. 2D-to-3D lifting needs the motion in the z-up world frame of the Human3.6M camera extrinsics instead. Facts
measured on the exp-map files (S1 S6 S7 S8 S9 S11, 50 Hz, 99 values a line):

* row 0 of every file has values 0:6 equal to 0;
* values 0:3 are a per-frame displacement of the root expressed in the root's own frame (walking: about 12.7 mm per
  frame for S1, 19.5 for S9, mostly along +z, the subject's forward direction); values 3:6 are per-frame rotation
  increments of the root (exp-maps, never above 0.08 rad);
* integrating them as ``human-motion-prediction``'s ``revert_coordinate_space`` does, ``R_t = R_diff,t @ R_{t-1}``
  and ``T_t = T_{t-1} + R_{t-1}^T v_t``, gives a plausible path: S9 walking_1 covers 49 m in 49 s while staying
  within about 2 x 3.3 m horizontally (laps inside the capture volume), and once levelled the hips' height varies
  by under 50 mm (5th to 95th percentile). Of the three other orders, the two mixed ones (``R_diff @ R_{t-1}``
  with ``R_{t-1} v``, ``R_{t-1} @ R_diff`` with ``R_{t-1}^T v``) wander 9 to 10 m away from the start; the
  column-vector order ``R_{t-1} @ R_diff`` with ``R_{t-1} v`` stays bounded, but no plane levels it (its hips still
  rise and fall by 0.4 to 1.6 m over a walk). The chosen order is also the project's row-vector FK's: a vector
  ``v`` of the root frame points along ``v @ R = R^T v``, and a child's global rotation is its local rotation
  times its parent's;
* the starting position, heading and tilt are lost: frame 0 is the identity, so the integrated body leans by one
  constant rotation (about 15 degrees; 9 to 22 on walking_1 of S1, S9 and S11) and its feet run over a tilted plane.

The recipe, and why:

1. :func:`integrate_root` integrates the root as above.
2. :func:`integrated_positions` runs the project's FK
   (:func:`~crisscross.data.kinematics.forward_kinematics_rotmat`) with the integrated root rotation in place of
   values 3:6, then adds the integrated translation (mm, y up as far as frame 0's pelvis was level).
3. The lean is one rotation for the whole sequence, so it is undone by levelling the floor, and the body is
   rotated so that the floor's normal is vertical. The floor is a plane fitted to the lower envelope of the feet:
   linear quantile regression (:data:`FLOOR_QUANTILE` = 0.1) of the lowest point of each foot in every frame.
   Levelling on the head-to-feet direction is wrong for sitting sequences, whose torso leans for long stretches.
   A plain least-squares plane through the lowest foot points fails there too (S9 sitting_1 tilted by 65 degrees):
   feet rest on the chair or in the air for long stretches and the floor contacts cover a patch of about
   0.3 x 0.5 m. The quantile fit is not moved by raised feet as long as they are under 90 % of the points, needs
   no random sampling (a RANSAC fit of the same points jumped between solutions up to 15 degrees apart with its
   seed on S1 sitting), and on the seated actions of all six subjects leaves the mean hip-to-neck vector of the
   standing frames a median 3 degrees from vertical; on walking it ends within 1 degree of vertical.
4. The y-up frame is mapped to the cameras' z-up world by the proper rotation ``(x, y, z) -> (x, -z, y)``
   (:data:`Y_UP_TO_Z_UP`, determinant +1; the reference code's ``[0, 2, 1]`` axis swap is a reflection that
   mirrors the subject, see una-dinosauria/human-motion-prediction issue 46). The floor is put at ``z = 0``: the
   median height of the lowest foot point over the frames in contact (within :data:`CONTACT_MM` of the plane).
   The sequence's mean horizontal position (over all frames and joints) goes to the origin of the capture volume,
   and the result is optionally turned about ``z`` by a heading.

The ankle joint ("Foot") sits 20 to 35 mm above the toes when a foot is planted, and the fixed skeleton's foot does
not fit every subject's, so single frames show feet a little under ``z = 0``: on walking and sitting of S1, S9 and
S11 the lowest foot point goes at most 29 mm below, its 5th percentile 7 to 19 mm below. Sitting on the floor
(sittingdown) reaches 5th percentiles of -50 mm.

The reference FK of that repository never uses values 0:3 and adds exp-map values as position offsets in its
``rotInd`` bookkeeping (a mistake by its maintainer's own account, issue 52), so the project's FK is used instead.
All bone lengths are those of :data:`~crisscross.data.skeleton.H36M_SKELETON`, the same for every subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crisscross.data.errors import DataError
from crisscross.data.h36m import H36M_ACTIONS, find_h36m_root, h36m_file, read_expmap_text
from crisscross.data.kinematics import expmap_to_rotmat, forward_kinematics_rotmat, single_threaded_torch
from crisscross.data.skeleton import H36M_SKELETON, Skeleton

__all__ = [
    "CONTACT_MM",
    "FLOOR_QUANTILE",
    "FOOT_JOINTS",
    "Y_UP_TO_Z_UP",
    "fit_floor",
    "integrate_root",
    "integrated_positions",
    "level_rotation",
    "load_world_sequences",
    "world_file",
    "world_positions",
    "world_sequence_paths",
]

#: Joints whose lowest point per frame touches the floor (ankle, toe base and toe tip of each foot).
FOOT_JOINTS: tuple[str, ...] = ("RightFoot", "RightToeBase", "RightToeSite", "LeftFoot", "LeftToeBase", "LeftToeSite")
#: Quantile of the per-foot lowest points the floor plane is fitted to (the lower envelope of the feet).
FLOOR_QUANTILE = 0.1
#: A frame whose lowest foot point lies within this distance (mm) of the floor plane is in contact with the floor.
CONTACT_MM = 30.0
#: Column-vector rotation (x, y, z) -> (x, -z, y) from the FK frame (y up, z forward) to the cameras' z-up world.
Y_UP_TO_Z_UP: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _check_values(values: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != skeleton.num_angle_values or values.shape[0] == 0:
        raise ValueError(f"expected values of shape [T, {skeleton.num_angle_values}] with T >= 1 for skeleton "
                         f"{skeleton.name!r}, got {values.shape}")
    return values


def integrate_root(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the per-frame root displacements and rotation increments of an exp-map sequence.

    ``R_t = expmap(values[t, 3:6]) @ R_{t-1}`` and ``T_t = T_{t-1} + R_{t-1}^T values[t, 0:3]`` with
    ``R_{-1} = I`` and ``T_{-1} = 0`` (row 0 of the files is zero, so frame 0 is the identity at the origin).

    Args:
        values: Array[T, >= 6] frames of the exp-map text format (99 values for H3.6M; only 0:6 are read).

    Returns:
        ``(rotations, translations)``: Array[T, 3, 3] root rotations in the row-vector convention of the FK
        (a root-frame vector ``v`` points along ``v @ R`` in the integrated frame) and Array[T, 3] root
        positions in millimetres, both float64.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 6:
        raise ValueError(f"expected values of shape [T, >= 6], got {values.shape}")
    increments = expmap_to_rotmat(torch.from_numpy(np.ascontiguousarray(values[:, 3:6]))).numpy()
    rotations = np.empty((len(values), 3, 3))
    translations = np.empty((len(values), 3))
    rot, trans = np.eye(3), np.zeros(3)
    for t in range(len(values)):
        trans = trans + rot.T @ values[t, :3]
        rot = increments[t] @ rot
        rotations[t], translations[t] = rot, trans
    return rotations, translations


def integrated_positions(values: np.ndarray, skeleton: Skeleton = H36M_SKELETON) -> np.ndarray:
    """Joint positions with the integrated root, before levelling: FK with :func:`integrate_root`'s rotation in
    place of values 3:6, plus its translation.

    Args:
        values: Array[T, 3 + 3 J] frames of the exp-map text format.
        skeleton: tree and offsets of the file.

    Returns:
        Array[T, J, 3] float64 millimetres in the frame of frame 0's pelvis (y up only as far as that pelvis was
        level).
    """
    values = _check_values(values, skeleton)
    rotations, translations = integrate_root(values)
    num_frames = values.shape[0]
    expmaps = torch.from_numpy(np.ascontiguousarray(values[:, 3:])).reshape(num_frames, skeleton.num_joints, 3)
    with single_threaded_torch():
        local_rot = expmap_to_rotmat(expmaps)
        local_rot[:, 0] = torch.from_numpy(rotations)
        positions = forward_kinematics_rotmat(local_rot, skeleton).numpy()
    return positions + translations[:, None, :]


def _lowest_per_foot(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Array[2 T, 3]: in every frame, the lowest (min y) of the right foot's joints, then of the left foot's."""
    index = {name: i for i, name in enumerate(skeleton.joint_names)}
    lowest = []
    for side in ("Right", "Left"):
        joints = positions[:, [index[name] for name in FOOT_JOINTS if name.startswith(side)]]
        lowest.append(joints[np.arange(len(joints)), joints[..., 1].argmin(axis=1)])
    return np.concatenate(lowest)


def _quantile_plane(points: np.ndarray, quantile: float, iterations: int = 200) -> np.ndarray:
    """Plane ``y = a x + b z + c`` below which a ``quantile`` share of Array[N, 3] points lie: linear quantile
    regression (least absolute deviations with asymmetric weights) solved by iteratively reweighted least squares.

    Returns:
        Array[3] ``(a, b, c)``.
    """
    design = np.stack((points[:, 0], points[:, 2], np.ones(len(points))), axis=1)
    target = points[:, 1]
    coeffs = np.linalg.lstsq(design, target, rcond=None)[0]
    for _ in range(iterations):
        residual = target - design @ coeffs
        weights = np.where(residual > 0, quantile, 1.0 - quantile) / np.maximum(np.abs(residual), 1.0)
        updated = np.linalg.solve(design.T @ (weights[:, None] * design), design.T @ (weights * target))
        converged = np.abs(updated - coeffs).max() < 1e-8 * max(1.0, np.abs(coeffs).max())
        coeffs = updated
        if converged:
            break
    return coeffs


def fit_floor(positions: np.ndarray, skeleton: Skeleton = H36M_SKELETON) -> tuple[np.ndarray, float]:
    """The floor plane under a y-up sequence: the lower envelope of the feet.

    The candidates are the lowest point of each foot in every frame (2 T points). A plane is fitted to their
    :data:`FLOOR_QUANTILE` by quantile regression: the share of points above it (raised, swinging or crossed feet)
    does not move it, and points below it are limited to that share. Deterministic. When the candidates do not
    spread over both horizontal directions (a single frame, feet on a line) the floor is horizontal.

    Args:
        positions: Array[T, J, 3] joint positions (mm), y roughly up.
        skeleton: names the :data:`FOOT_JOINTS`.

    Returns:
        ``(normal, offset)``: Array[3] upward unit normal (positive y) and the plane's offset, ``normal . p = offset``.
    """
    points = _lowest_per_foot(np.asarray(positions, dtype=np.float64), skeleton)
    spread = points[:, [0, 2]] - points[:, [0, 2]].mean(axis=0)
    if len(points) < 3 or np.linalg.svd(spread, compute_uv=False)[-1] < 1.0:
        return np.array([0.0, 1.0, 0.0]), float(np.quantile(points[:, 1], FLOOR_QUANTILE))
    a, b, c = _quantile_plane(points, FLOOR_QUANTILE)
    scale = np.sqrt(a * a + 1.0 + b * b)
    return np.array([-a, 1.0, -b]) / scale, float(c / scale)


def level_rotation(normal: np.ndarray) -> np.ndarray:
    """The smallest column-vector rotation taking the unit vector ``normal`` onto ``+y``.

    Returns:
        Array[3, 3] rotation ``L`` with ``L @ normal = (0, 1, 0)``; apply to row vectors as ``p @ L.T``.
    """
    normal = np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal)
    up = np.array([0.0, 1.0, 0.0])
    axis = np.cross(normal, up)
    sin, cos = np.linalg.norm(axis), float(normal @ up)
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        return np.diag([1.0, -1.0, -1.0])  # half turn about x
    k = axis / sin
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * cross + (1.0 - cos) * cross @ cross


def _heading_rotation(heading_rad: float) -> np.ndarray:
    """Column-vector rotation by ``heading_rad`` about the world's +z (counter-clockwise seen from above)."""
    c, s = np.cos(heading_rad), np.sin(heading_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def world_positions(values: np.ndarray, skeleton: Skeleton = H36M_SKELETON, heading_rad: float = 0.0) -> np.ndarray:
    """World positions of one exp-map sequence in the z-up frame of the Human3.6M cameras.

    Integrates the root and runs FK (:func:`integrated_positions`), levels the floor (:func:`fit_floor`), maps y-up to
    z-up with :data:`Y_UP_TO_Z_UP`, puts the floor at ``z = 0`` and the mean horizontal position over all frames
    and joints at the origin, then turns the sequence by ``heading_rad`` about ``+z``.

    Args:
        values: Array[T, 3 + 3 J] frames of the exp-map text format (50 Hz for the H3.6M files).
        skeleton: tree and offsets of the file (99 values per frame for H3.6M).
        heading_rad: rotation about the vertical axis through the origin, applied last.

    Returns:
        Array[T, J, 3] float32 positions in millimetres, z up, floor at 0, horizontally centred.
    """
    values = _check_values(values, skeleton)
    positions = integrated_positions(values, skeleton)
    normal, offset = fit_floor(positions, skeleton)
    to_world = Y_UP_TO_Z_UP @ level_rotation(normal)
    world = positions @ to_world.T  # the floor plane becomes z = offset
    feet = world[:, [skeleton.joint_names.index(name) for name in FOOT_JOINTS], 2].min(axis=1)
    contact = np.abs(feet - offset) <= CONTACT_MM
    world[..., 2] -= np.median(feet[contact]) if contact.any() else offset
    world[..., :2] -= world[..., :2].reshape(-1, 2).mean(axis=0)
    world = world @ _heading_rotation(heading_rad).T
    return world.astype(np.float32)


def world_file(path: str | Path) -> np.ndarray:
    """Array[T, 32, 3] float32 mm: the world-frame positions of one exp-map file (:func:`world_positions`).

    Raises:
        DataError: the file cannot be read, or its values are so large that the poses are not finite numbers.
    """
    try:
        world = world_positions(read_expmap_text(path, H36M_SKELETON.num_angle_values))
    except np.linalg.LinAlgError:  # the floor fit's SVD, on poses that are not finite
        world = None
    if world is None or not np.isfinite(world).all():
        # Finite but huge values (say 1e300) overflow in the rotations and the root integration.
        raise DataError(f"{path}: exp-map values too large: the poses they give are not finite numbers")
    return world


def world_sequence_paths(
    folder: str | Path, subjects: Sequence[str], actions: Sequence[str] | None = None
) -> dict[tuple[str, str, int], Path]:
    """The present ``<subject>/<action>_<subaction>.txt`` files, keyed and checked as :func:`load_world_sequences`."""
    chosen = list(H36M_ACTIONS) if actions is None else list(actions)
    unknown = [a for a in chosen if a not in H36M_ACTIONS]
    if unknown:
        raise DataError(f"unknown H3.6M action(s) {unknown}; known actions: {', '.join(H36M_ACTIONS)}")
    root = find_h36m_root(folder)
    if root is None:
        raise DataError(f"{folder}: no Human3.6M folder found (expected S1 ... S11 folders of "
                        "<action>_<subaction>.txt files, directly or under h3.6m/dataset)")
    paths: dict[tuple[str, str, int], Path] = {}
    for subject in subjects:
        if not (root / subject).is_dir():
            raise DataError(f"{root / subject}: missing subject folder")
        for action in chosen:
            for subaction in (1, 2):
                path = h36m_file(root, subject, action, subaction)
                if path.is_file():
                    paths[(subject, action, subaction)] = path
    if not paths:
        raise DataError(f"{root}: no H3.6M sequence file found for subjects {', '.join(subjects)} "
                        f"and actions {', '.join(chosen)}")
    return paths


def load_world_sequences(
    folder: str | Path, subjects: Sequence[str], actions: Sequence[str] | None = None
) -> dict[tuple[str, str, int], np.ndarray]:
    """World-frame positions of every present ``<subject>/<action>_<subaction>.txt`` file, at 50 Hz.

    Args:
        folder: the Human3.6M folder (any layout accepted by :func:`~crisscross.data.h36m.find_h36m_root`).
        subjects: subject folders to read (``"S1"``, ...).
        actions: subset of :data:`~crisscross.data.h36m.H36M_ACTIONS` (default all 15).

    Returns:
        ``{(subject, action, subaction): Array[T, 32, 3]}`` float32 mm from :func:`world_positions`, in the order
        subject, action, sub-action. Files absent from partial copies are skipped.

    Raises:
        DataError: no Human3.6M folder, an unknown action, a missing subject folder, no file at all, or a
            malformed file (``file:line``, from :func:`~crisscross.data.h36m.read_expmap_text`).
    """
    return {key: world_file(path) for key, path in world_sequence_paths(folder, subjects, actions).items()}
