"""Skeletons as named data: joint names, kinematic tree, bone offsets and the joint subsets models use.

The Human3.6M tree and its 96 bone offsets (mm) are those of Martinez et al. (una-dinosauria/human-motion-prediction,
``src/forward_kinematics.py::_some_variables``), reused unchanged by LTD, HisRepItself, siMLPe, MSR-GCN and PGBIG.
The 22 predicted joints, the 6 duplicated joints and their sources follow HisRepItself / siMLPe
(``dim_used``, ``joint_to_ignore`` -> ``joint_equal``). The CMU-Mocap tree, its offsets (70 x the CMU values) and its
25 used joints follow LTD (wei-mao-2019/LearnTrajDep ``utils/forward_kinematics.py::_some_variables_cmu`` and
``main_cmu_3d.py``). Joint names for CMU are ours (the reference code has none).

Axis convention of the forward-kinematics output (root rotation removed, see ``kinematics.py``): ``y`` is up (legs hang
along -y in the rest pose), ``x`` points to the subject's left (the left hip offset is +x) and ``z`` points forward (toe
offsets are +z). ``tests/realdata`` checks this on the real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

__all__ = [
    "BODY_PARTS",
    "CMU_SKELETON",
    "H36M_17_FROM_32",
    "H36M_17_SKELETON",
    "H36M_SKELETON",
    "HUMANEVA_15_SKELETON",
    "SKELETONS",
    "Skeleton",
    "get_skeleton",
    "skeleton_from_dict",
    "skeleton_from_meta",
    "skeleton_to_dict",
]

#: Names of the body-part ids returned by :meth:`Skeleton.predicted_body_parts`.
BODY_PARTS: tuple[str, ...] = ("torso", "left_leg", "right_leg", "left_arm", "right_arm")
_TORSO, _LEFT_LEG, _RIGHT_LEG, _LEFT_ARM, _RIGHT_ARM = range(5)


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree with the joint subsets used for forecasting.

    Attributes:
        name: short identifier (``"h36m"``, ``"cmu"``, ...).
        joint_names: one unique name per joint, length J.
        parents: parent index per joint, ``-1`` for the root; every parent index is smaller than its child's.
        offsets_mm: bone offset of each joint from its parent in the parent's frame, J x 3, millimetres; empty for a
            keypoint layout that is never driven by forward kinematics (the lifting skeletons).
        predicted: sorted indices of the joints models predict (22 for H3.6M).
        copies: ``(dst, src)`` pairs; at evaluation joint ``dst`` takes the (predicted) position of joint ``src``
            because the two always coincide.
        mirror_pairs: ``(left, right)`` joint pairs swapped by a left/right mirror.
        body_parts: body-part id (index into :data:`BODY_PARTS`) per joint, length J.
        vertical_axis: coordinate axis pointing up in the positions this skeleton produces.
        lateral_axis: coordinate axis pointing to the subject's left.
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets_mm: tuple[tuple[float, float, float], ...]
    predicted: tuple[int, ...]
    copies: tuple[tuple[int, int], ...] = ()
    mirror_pairs: tuple[tuple[int, int], ...] = ()
    body_parts: tuple[int, ...] = ()
    vertical_axis: int = 1
    lateral_axis: int = 0

    def __post_init__(self) -> None:
        num_joints = len(self.joint_names)
        if len(set(self.joint_names)) != num_joints:
            raise ValueError(f"skeleton {self.name!r}: joint names are not unique")
        if len(self.parents) != num_joints or len(self.offsets_mm) not in (0, num_joints):
            raise ValueError(
                f"skeleton {self.name!r}: {num_joints} names but {len(self.parents)} parents "
                f"and {len(self.offsets_mm)} offsets"
            )
        for joint, parent in enumerate(self.parents):
            if not -1 <= parent < joint:
                raise ValueError(f"skeleton {self.name!r}: parent {parent} of joint {joint} is not an earlier joint")
        if list(self.predicted) != sorted(set(self.predicted)) or not all(0 <= j < num_joints for j in self.predicted):
            raise ValueError(f"skeleton {self.name!r}: predicted joints must be sorted, unique and in range")
        predicted = set(self.predicted)
        for dst, src in self.copies:
            if dst in predicted or src not in predicted:
                raise ValueError(f"skeleton {self.name!r}: copy ({dst} <- {src}) must fill an unpredicted joint "
                                 "from a predicted one")
        if self.body_parts and len(self.body_parts) != num_joints:
            raise ValueError(f"skeleton {self.name!r}: body_parts needs one id per joint")
        self.mirror_permutation()  # validates the pairs

    @property
    def num_joints(self) -> int:
        """Number of joints J of the full skeleton."""
        return len(self.joint_names)

    @property
    def num_angle_values(self) -> int:
        """Values per frame of the exp-map text format: global translation (3) + one rotation per joint (3 J)."""
        return 3 + 3 * self.num_joints

    def offsets_tensor(self, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
        """Bone offsets as a tensor.

        Returns:
            Tensor[J, 3] in millimetres.
        """
        if not self.offsets_mm:
            raise ValueError(f"skeleton {self.name!r} is a keypoint layout without bone offsets")
        return torch.tensor(self.offsets_mm, dtype=dtype, device=device)

    def copy_destinations(self) -> tuple[int, ...]:
        """Joints filled by copying another joint (the ``dst`` of :attr:`copies`)."""
        return tuple(dst for dst, _ in self.copies)

    def copy_sources(self) -> tuple[int, ...]:
        """Source joint of each copy, aligned with :meth:`copy_destinations`."""
        return tuple(src for _, src in self.copies)

    def unpredicted_joints(self) -> tuple[int, ...]:
        """Joints neither predicted nor copied (H3.6M: 0, 1, 6, 11, constant once global motion is removed)."""
        skip = set(self.predicted) | set(self.copy_destinations())
        return tuple(j for j in range(self.num_joints) if j not in skip)

    def predicted_parents(self) -> tuple[int, ...]:
        """Parent of each predicted joint inside the predicted subset.

        For each predicted joint this is the index *within* :attr:`predicted` of its nearest predicted ancestor, or
        ``-1`` when no ancestor is predicted (H3.6M has three such roots: both knees and the upper spine).
        """
        position = {joint: i for i, joint in enumerate(self.predicted)}
        result = []
        for joint in self.predicted:
            ancestor = self.parents[joint]
            while ancestor != -1 and ancestor not in position:
                ancestor = self.parents[ancestor]
            result.append(position.get(ancestor, -1))
        return tuple(result)

    def predicted_body_parts(self) -> tuple[int, ...]:
        """Body-part id (see :data:`BODY_PARTS`) of each predicted joint, for part embeddings."""
        if not self.body_parts:
            return tuple(0 for _ in self.predicted)
        return tuple(self.body_parts[j] for j in self.predicted)

    def mirror_permutation(self, joints: Sequence[int] | None = None) -> tuple[int, ...]:
        """Index permutation that swaps left and right joints, over the full skeleton or a joint subset.

        Args:
            joints: the subset the positions are indexed by (e.g. :attr:`predicted`); ``None`` for all joints.

        Returns:
            ``perm`` such that ``mirrored[..., i, :] = flipped[..., perm[i], :]`` on that subset.

        Raises:
            ValueError: a pair is out of range, a joint is in two pairs, or the subset holds only one side of a pair.
        """
        swap = {}
        for left, right in self.mirror_pairs:
            if left in swap or right in swap or left == right:
                raise ValueError(f"skeleton {self.name!r}: mirror pair ({left}, {right}) overlaps another pair")
            if not (0 <= left < self.num_joints and 0 <= right < self.num_joints):
                raise ValueError(f"skeleton {self.name!r}: mirror pair ({left}, {right}) out of range")
            swap[left], swap[right] = right, left
        subset = list(range(self.num_joints)) if joints is None else list(joints)
        position = {joint: i for i, joint in enumerate(subset)}
        perm = []
        for joint in subset:
            partner = swap.get(joint, joint)
            if partner not in position:
                raise ValueError(f"skeleton {self.name!r}: joint {partner} (mirror of {joint}) is not in the subset")
            perm.append(position[partner])
        return tuple(perm)


def _rows(values: Sequence[float], scale: float = 1.0) -> tuple[tuple[float, float, float], ...]:
    if len(values) % 3:
        raise ValueError("offset values must come in triplets")
    return tuple(
        (values[i] * scale, values[i + 1] * scale, values[i + 2] * scale) for i in range(0, len(values), 3)
    )


# Martinez et al. bone offsets (mm), one (x, y, z) row per joint.
_H36M_OFFSETS = (
    0.000000, 0.000000, 0.000000,  # 0 Hips
    -132.948591, 0.000000, 0.000000,  # 1 RightUpLeg
    0.000000, -442.894612, 0.000000,  # 2 RightLeg
    0.000000, -454.206447, 0.000000,  # 3 RightFoot
    0.000000, 0.000000, 162.767078,  # 4 RightToeBase
    0.000000, 0.000000, 74.999437,  # 5 RightToeSite
    132.948826, 0.000000, 0.000000,  # 6 LeftUpLeg
    0.000000, -442.894413, 0.000000,  # 7 LeftLeg
    0.000000, -454.206590, 0.000000,  # 8 LeftFoot
    0.000000, 0.000000, 162.767426,  # 9 LeftToeBase
    0.000000, 0.000000, 74.999948,  # 10 LeftToeSite
    0.000000, 0.100000, 0.000000,  # 11 Spine
    0.000000, 233.383263, 0.000000,  # 12 Spine1
    0.000000, 257.077681, 0.000000,  # 13 Neck
    0.000000, 121.134938, 0.000000,  # 14 Head
    0.000000, 115.002227, 0.000000,  # 15 HeadSite
    0.000000, 257.077681, 0.000000,  # 16 LeftShoulder
    0.000000, 151.034226, 0.000000,  # 17 LeftArm
    0.000000, 278.882773, 0.000000,  # 18 LeftForeArm
    0.000000, 251.733451, 0.000000,  # 19 LeftHand
    0.000000, 0.000000, 0.000000,  # 20 LeftHandThumb
    0.000000, 0.000000, 99.999627,  # 21 LeftThumbSite
    0.000000, 100.000188, 0.000000,  # 22 LeftWristEnd
    0.000000, 0.000000, 0.000000,  # 23 LeftWristSite
    0.000000, 257.077681, 0.000000,  # 24 RightShoulder
    0.000000, 151.031437, 0.000000,  # 25 RightArm
    0.000000, 278.892924, 0.000000,  # 26 RightForeArm
    0.000000, 251.728680, 0.000000,  # 27 RightHand
    0.000000, 0.000000, 0.000000,  # 28 RightHandThumb
    0.000000, 0.000000, 99.999888,  # 29 RightThumbSite
    0.000000, 137.499922, 0.000000,  # 30 RightWristEnd
    0.000000, 0.000000, 0.000000,  # 31 RightWristSite
)

H36M_SKELETON = Skeleton(
    name="h36m",
    # HisRepItself's 32 names, with each anonymous "Site" end point named after its parent.
    joint_names=(
        "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeSite",
        "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeSite",
        "Spine", "Spine1", "Neck", "Head", "HeadSite",
        "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumb", "LeftThumbSite",
        "LeftWristEnd", "LeftWristSite",
        "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb", "RightThumbSite",
        "RightWristEnd", "RightWristSite",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12,
             16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30),
    offsets_mm=_rows(_H36M_OFFSETS),
    predicted=(2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30),
    copies=((16, 13), (20, 19), (23, 22), (24, 13), (28, 27), (31, 30)),
    mirror_pairs=((1, 6), (2, 7), (3, 8), (4, 9), (5, 10), (16, 24), (17, 25), (18, 26), (19, 27),
                  (20, 28), (21, 29), (22, 30), (23, 31)),
    body_parts=(
        _TORSO, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG,
        _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG,
        _TORSO, _TORSO, _TORSO, _TORSO, _TORSO,
        _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM,
        _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM,
    ),
)

# LTD CMU bone offsets in CMU units, one (x, y, z) row per joint; the skeleton scales them by 70 to millimetres.
_CMU_OFFSETS = (
    0, 0, 0,  # 0 Hips
    0, 0, 0,  # 1 LeftHipJoint
    1.65674, -1.80282, 0.62477,  # 2 LeftUpLeg
    2.59720, -7.13576, 0,  # 3 LeftLeg
    2.49236, -6.84770, 0,  # 4 LeftFoot
    0.197040, -0.541360, 2.14581,  # 5 LeftToeBase
    0, 0, 1.11249,  # 6 LeftToeSite
    0, 0, 0,  # 7 RightHipJoint
    -1.61070, -1.80282, 0.624760,  # 8 RightUpLeg
    -2.59502, -7.12977, 0,  # 9 RightLeg
    -2.46780, -6.78024, 0,  # 10 RightFoot
    -0.230240, -0.632580, 2.13368,  # 11 RightToeBase
    0, 0, 1.11569,  # 12 RightToeSite
    0, 0, 0,  # 13 LowerBack
    0.0196100, 2.05450, -0.141120,  # 14 Spine
    0.0102100, 2.06436, -0.0592100,  # 15 Spine1
    0, 0, 0,  # 16 Neck
    0.00713000, 1.56711, 0.149680,  # 17 Neck1
    0.0342900, 1.56041, -0.100060,  # 18 Head
    0.0130500, 1.62560, -0.0526500,  # 19 HeadSite
    0, 0, 0,  # 20 LeftShoulder
    3.54205, 0.904360, -0.173640,  # 21 LeftArm
    4.86513, 0, 0,  # 22 LeftForeArm
    3.35554, 0, 0,  # 23 LeftHand
    0, 0, 0,  # 24 LeftFingerBase
    0.661170, 0, 0,  # 25 LeftHandIndex
    0.533060, 0, 0,  # 26 LeftHandSite
    0, 0, 0,  # 27 LeftThumbBase
    0.541200, 0, 0.541200,  # 28 LeftThumb
    0, 0, 0,  # 29 RightShoulder
    -3.49802, 0.759940, -0.326160,  # 30 RightArm
    -5.02649, 0, 0,  # 31 RightForeArm
    -3.36431, 0, 0,  # 32 RightHand
    0, 0, 0,  # 33 RightFingerBase
    -0.730410, 0, 0,  # 34 RightHandIndex
    -0.588870, 0, 0,  # 35 RightHandSite
    0, 0, 0,  # 36 RightThumbBase
    -0.597860, 0, 0.597860,  # 37 RightThumb
)
_CMU_OFFSET_SCALE = 70.0

CMU_SKELETON = Skeleton(
    name="cmu",
    joint_names=(
        "Hips", "LeftHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeSite",
        "RightHipJoint", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeSite",
        "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head", "HeadSite",
        "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftFingerBase", "LeftHandIndex", "LeftHandSite",
        "LeftThumbBase", "LeftThumb",
        "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightFingerBase", "RightHandIndex",
        "RightHandSite", "RightThumbBase", "RightThumb",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18, 15,
             20, 21, 22, 23, 24, 25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36),
    offsets_mm=_rows(_CMU_OFFSETS, _CMU_OFFSET_SCALE),
    predicted=(3, 4, 5, 6, 9, 10, 11, 12, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 28, 30, 31, 32, 34, 35, 37),
    copies=((16, 15), (20, 15), (29, 15), (24, 23), (27, 23), (33, 32), (36, 32)),
    mirror_pairs=((1, 7), (2, 8), (3, 9), (4, 10), (5, 11), (6, 12), (20, 29), (21, 30), (22, 31), (23, 32),
                  (24, 33), (25, 34), (26, 35), (27, 36), (28, 37)),
    body_parts=(
        _TORSO, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG,
        _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG,
        _TORSO, _TORSO, _TORSO, _TORSO, _TORSO, _TORSO, _TORSO,
        _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM,
        _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM,
    ),
)

# The 17-joint Human3.6M layout of the lifting literature (VideoPose3D ``h36m_dataset.py``): joints
# 0 1 2 3 6 7 8 12 13 14 15 17 18 19 25 26 27 of the 32, with both shoulders re-parented to the thorax. Its joints are
# camera-frame keypoints: x right in the image, y down, z away from the camera.
H36M_17_FROM_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_17_SKELETON = Skeleton(
    name="h36m17",
    joint_names=("Hips", "RightHip", "RightKnee", "RightAnkle", "LeftHip", "LeftKnee", "LeftAnkle", "Spine",
                 "Thorax", "Neck", "Head", "LeftShoulder", "LeftElbow", "LeftWrist", "RightShoulder", "RightElbow",
                 "RightWrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    offsets_mm=(),
    predicted=tuple(range(17)),
    mirror_pairs=((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)),
    body_parts=(_TORSO, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _LEFT_LEG, _LEFT_LEG, _LEFT_LEG, _TORSO, _TORSO, _TORSO,
                _TORSO, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM),
    vertical_axis=1,
    lateral_axis=0,
)

# HumanEva-I's 15 joints as VideoPose3D lays them out (``humaneva_dataset.py``; left joints 2 3 4 8 9 10).
HUMANEVA_15_SKELETON = Skeleton(
    name="humaneva15",
    joint_names=("Pelvis", "Thorax", "LeftShoulder", "LeftElbow", "LeftWrist", "RightShoulder", "RightElbow",
                 "RightWrist", "LeftHip", "LeftKnee", "LeftAnkle", "RightHip", "RightKnee", "RightAnkle", "Head"),
    parents=(-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
    offsets_mm=(),
    predicted=tuple(range(15)),
    mirror_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
    body_parts=(_TORSO, _TORSO, _LEFT_ARM, _LEFT_ARM, _LEFT_ARM, _RIGHT_ARM, _RIGHT_ARM, _RIGHT_ARM, _LEFT_LEG,
                _LEFT_LEG, _LEFT_LEG, _RIGHT_LEG, _RIGHT_LEG, _RIGHT_LEG, _TORSO),
    vertical_axis=1,
    lateral_axis=0,
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (H36M_SKELETON, CMU_SKELETON, H36M_17_SKELETON,
                                                      HUMANEVA_15_SKELETON)}


def get_skeleton(name: str) -> Skeleton:
    """The built-in skeleton called ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    if name not in SKELETONS:
        raise KeyError(f"unknown skeleton {name!r}; known skeletons: {', '.join(sorted(SKELETONS))}")
    return SKELETONS[name]


def skeleton_to_dict(skeleton: Skeleton) -> dict[str, Any]:
    """Every field of ``skeleton`` as plain lists and numbers (for checkpoints, so user skeletons travel with them)."""
    return asdict(skeleton)


def skeleton_from_dict(values: dict[str, Any]) -> Skeleton:
    """The inverse of :func:`skeleton_to_dict`; nested lists become the dataclass's tuples.

    Raises:
        ValueError: a missing or unknown field, or a description that fails :class:`Skeleton`'s checks.
    """
    names = {f.name for f in fields(Skeleton)}
    unknown, missing = set(values) - names, {"name", "joint_names", "parents", "offsets_mm", "predicted"} - set(values)
    if unknown or missing:
        raise ValueError(f"skeleton description: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")

    def as_tuple(v: Any) -> Any:
        return tuple(as_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v

    return Skeleton(**{k: as_tuple(v) for k, v in values.items()})


def skeleton_from_meta(meta: dict[str, Any]) -> Skeleton:
    """The skeleton a checkpoint's ``meta`` describes: its stored description when present, else a built-in by name.

    Checkpoints written before descriptions were stored name a built-in skeleton (``h36m`` or ``cmu``).
    """
    if meta.get("skeleton_spec"):
        return skeleton_from_dict(meta["skeleton_spec"])
    return get_skeleton(meta["skeleton"])
