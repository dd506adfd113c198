"""Motion data: skeletons, forward kinematics, datasets (embedded synthetic, H3.6M, CMU, user files), windows.

Positions are float32 millimetres, root-centred, ``Tensor[N, J, 3]``; see :class:`MotionSet`.
"""

from crisscross.data.datasets import DATASETS, DatasetInfo, get_dataset_info, load_motion
from crisscross.data.errors import DataError
from crisscross.data.kinematics import expmap_to_rotmat, forward_kinematics, rest_pose, rotmat_to_expmap
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import BODY_PARTS, CMU_SKELETON, H36M_SKELETON, SKELETONS, Skeleton, get_skeleton

__all__ = [
    "BODY_PARTS",
    "CMU_SKELETON",
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "H36M_SKELETON",
    "MotionSet",
    "SKELETONS",
    "SequenceKey",
    "Skeleton",
    "expmap_to_rotmat",
    "forward_kinematics",
    "get_dataset_info",
    "get_skeleton",
    "load_motion",
    "rest_pose",
    "rotmat_to_expmap",
]
