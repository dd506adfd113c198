"""The body frame: where world-frame motion goes before a forecaster sees it, and how forecasts go back.

The forecasting literature's Human3.6M and CMU positions are computed with the root's translation and rotation
zeroed in every frame (``the_sequence[:, 0:6] = 0``), so models only ever see motion in the pelvis frame: root at
the origin, both hip joints at their rest offsets (Human3.6M: on the x axis, the subject's left at +x), y up.
Recordings of one's own (motion capture, a 3D pose estimator) are in some world frame instead. This module moves
them into the body frame of a skeleton and back:

* the observed frame of every frame ``t`` has its x axis along the hip line (left hip minus right hip) and its y
  axis along the world's up direction made orthogonal to that line; ``z = x cross y``;
* the rest frame is the same construction on the skeleton's rest offsets (hips' offsets, its vertical axis);
* body-frame positions are ``(p - root) @ (R_rest @ R_obs^T)^T``: the hips land exactly where the training data has
  them. Heading and the tilt of the hip line are removed; a forward or backward tilt of the pelvis about the hip
  line is kept (the world's up is taken as the pelvis's, as no third pelvis point is observable in real data).

Shapes: T frames, J joints. Rotations act on column vectors; positions are rows, so a rotation ``R`` is applied as
``p @ R.T``. Inputs must be right-handed (a left-handed world frame mirrors the subject).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crisscross.data.skeleton import Skeleton

__all__ = ["BodyFrames", "body_frames", "detect_up_axis", "hip_joints", "rest_frame"]

# Below this |sin| between the hip line and the up direction the frame is undefined (a body lying on its side).
_MIN_SIN = 0.2


def hip_joints(skeleton: Skeleton) -> tuple[int, int] | None:
    """``(left, right)`` hip joints: the mirror pair nearest the root in the tree whose rest positions lie apart
    along the skeleton's lateral axis, the left one further along it; None without bone offsets or such a pair.

    (Human3.6M: its upper legs, children of the root. CMU: its upper legs, below hip joints at the root's place.)
    """
    if not skeleton.offsets_mm:
        return None
    rest = _rest_positions(skeleton)[:, skeleton.lateral_axis]

    def depth(joint: int) -> int:
        return 0 if skeleton.parents[joint] < 0 else 1 + depth(skeleton.parents[joint])

    pairs = sorted((max(depth(a), depth(b)), a, b) for a, b in skeleton.mirror_pairs if abs(rest[a] - rest[b]) > 1.0)
    if not pairs:
        return None
    _, a, b = pairs[0]
    return (a, b) if rest[a] > rest[b] else (b, a)


def _orthonormal(hip_line: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``[..., 3, 3]`` rotations whose columns are x (the hip line), y (``up`` orthogonal to it) and ``x cross y``."""
    x = hip_line / np.linalg.norm(hip_line, axis=-1, keepdims=True)
    y = up - (up * x).sum(-1, keepdims=True) * x
    y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)  # 0 where up is along x: replaced later
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def rest_frame(skeleton: Skeleton) -> np.ndarray:
    """Array[3, 3]: the rest frame (hip line of the rest offsets, the skeleton's vertical axis) as columns."""
    hips = hip_joints(skeleton)
    if hips is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no hip pair below its root with rest offsets")
    rest = _rest_positions(skeleton)
    up = np.zeros(3)
    up[skeleton.vertical_axis] = 1.0
    return _orthonormal(rest[hips[0]] - rest[hips[1]], up)


def detect_up_axis(positions: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """The world's up direction of ``positions`` (Array[T, J, 3]): the coordinate axis, with its sign, along which
    the head-end joints lie furthest from the feet on average.

    Head end and feet are the joints furthest from the root along the skeleton's vertical axis in the rest pose,
    upwards and downwards. Returns a unit Array[3] along x, y or z.
    """
    rest = _rest_positions(skeleton)[:, skeleton.vertical_axis]
    top, bottom = int(np.argmax(rest)), int(np.argmin(rest))
    mean = (positions[:, top] - positions[:, bottom]).mean(axis=0)
    axis = int(np.argmax(np.abs(mean)))
    up = np.zeros(3)
    up[axis] = np.sign(mean[axis]) or 1.0
    return up


def _rest_positions(skeleton: Skeleton) -> np.ndarray:
    """Array[J, 3]: joint positions of the rest pose (offsets summed down the tree)."""
    offsets = np.asarray(skeleton.offsets_mm, dtype=np.float64)
    out = np.zeros_like(offsets)
    for joint, parent in enumerate(skeleton.parents):
        out[joint] = offsets[joint] + (out[parent] if parent >= 0 else 0.0)
    return out


@dataclass(frozen=True)
class BodyFrames:
    """Per-frame maps between world and body frame: ``body = (world - root) @ to_body[t].T``."""

    root: np.ndarray  # [T, 3] the root joint's world position
    to_body: np.ndarray  # [T, 3, 3] rotations world -> body
    undefined_frames: int = 0  # frames whose hip line was (nearly) vertical: they took a neighbour's rotation

    def apply(self, world: np.ndarray) -> np.ndarray:
        """Array[T, J, 3] world positions -> body frame, frame by frame."""
        return np.einsum("tjc,tdc->tjd", world - self.root[:, None], self.to_body)

    def invert(self, body: np.ndarray, frame: int, root: np.ndarray | None = None) -> np.ndarray:
        """Array[..., J, 3] body-frame positions -> world, with frame ``frame``'s rotation and ``root`` (Array[..., 3],
        default that frame's root position)."""
        origin = self.root[frame] if root is None else root
        return body @ self.to_body[frame] + np.asarray(origin)[..., None, :]


def body_frames(positions: np.ndarray, skeleton: Skeleton, up: np.ndarray | None = None,
                translation_only: bool = False) -> BodyFrames:
    """The body frame of every frame of world-frame ``positions`` (Array[T, J, 3] in ``skeleton``'s joint order).

    Args:
        positions: world positions, any unit.
        skeleton: the joints' skeleton; its hips and rest offsets define the body frame.
        up: the world's up direction, Array[3] or one per frame Array[T, 3] (need not be unit length); default
            :func:`detect_up_axis`.
        translation_only: only move the root to the origin (skeletons without rest offsets, whose training data
            was root-centred without rotation).

    Frames whose hip line is within 11.5 degrees of the up direction (a body lying on its side) have no body frame;
    they take the rotation of the nearest frame that has one (counted in ``undefined_frames``).

    Raises:
        ValueError: the skeleton has no hip pair, or the hip line is (nearly) vertical in every frame.
    """
    root = positions[:, skeleton.parents.index(-1)].astype(np.float64)
    frames = positions.shape[0]
    if translation_only:
        return BodyFrames(root, np.broadcast_to(np.eye(3), (frames, 3, 3)).copy())
    hips = hip_joints(skeleton)
    if hips is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no hip pair below its root with rest offsets")
    up = detect_up_axis(positions, skeleton) if up is None else np.asarray(up, dtype=np.float64)
    hip_line = (positions[:, hips[0]] - positions[:, hips[1]]).astype(np.float64)
    length = np.linalg.norm(hip_line, axis=-1)
    up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    sin = np.linalg.norm(np.cross(hip_line, up), axis=-1) / np.maximum(length, 1e-12)
    bad = sin < _MIN_SIN
    if bad.all():
        raise ValueError(f"the hip line ({skeleton.joint_names[hips[0]]} to {skeleton.joint_names[hips[1]]}) is "
                         f"nearly parallel to the up direction in every frame; the body frame is undefined")
    observed = _orthonormal(hip_line, np.broadcast_to(up, hip_line.shape))
    if bad.any():  # a body lying on its side: those frames take the rotation of the nearest frame where it is defined
        good = np.flatnonzero(~bad)
        nearest = good[np.abs(np.flatnonzero(bad)[:, None] - good[None]).argmin(axis=1)]
        observed[bad] = observed[nearest]
    return BodyFrames(root, rest_frame(skeleton) @ observed.transpose(0, 2, 1), int(bad.sum()))
