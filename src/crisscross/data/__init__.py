"""Motion data: skeletons, forward kinematics, datasets (embedded synthetic, H3.6M, CMU, user files), windows.

Datasets live in a registry (``registry.py``); :func:`register_dataset` adds one.

Positions are float32 millimetres, root-centred, ``Tensor[N, J, 3]``; see :class:`MotionSet`. Importing this package
reads no files and no environment variables; loaders take the data and cache folders as arguments.
"""

from crisscross.data.augment import augment_batch, mirror, reverse_time, rotate_vertical
from crisscross.data.cmu import CMU_ACTIONS
from crisscross.data.datasets import (
    DATASETS,
    DataDirReport,
    DatasetEntry,
    DatasetInfo,
    check_data_dir,
    find_data_dir,
    get_dataset_info,
    load_motion,
    register_dataset,
    unregister_dataset,
)
from crisscross.data.errors import DataError
from crisscross.data.h36m import H36M_ACTIONS
from crisscross.data.kinematics import expmap_to_rotmat, forward_kinematics, rest_pose, rotmat_to_expmap
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import BODY_PARTS, CMU_SKELETON, H36M_SKELETON, SKELETONS, Skeleton, get_skeleton

__all__ = [
    "BODY_PARTS",
    "CMU_ACTIONS",
    "CMU_SKELETON",
    "DATASETS",
    "H36M_ACTIONS",
    "H36M_SKELETON",
    "SKELETONS",
    "DataDirReport",
    "DataError",
    "DatasetEntry",
    "DatasetInfo",
    "MotionSet",
    "SequenceKey",
    "Skeleton",
    "augment_batch",
    "check_data_dir",
    "expmap_to_rotmat",
    "find_data_dir",
    "forward_kinematics",
    "get_dataset_info",
    "get_skeleton",
    "load_motion",
    "mirror",
    "register_dataset",
    "rest_pose",
    "reverse_time",
    "rotate_vertical",
    "rotmat_to_expmap",
    "unregister_dataset",
]
