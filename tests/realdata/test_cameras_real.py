"""The HumanEva-I extrinsics and frame conventions against the real 3D and 2D ground truth (skipped when absent).

Each subject's first take is moved from the world (metres in the files, millimetres here) into each camera with the
published extrinsics, and pinhole intrinsics are fitted against the file's 2D pixels: a reprojection error of a few
pixels is only possible when the extrinsics, the quaternion convention and the units are all right. The fitted
intrinsics are printed (run with ``-s``).

The npz files hold pickled object arrays. They are read with an unpickler that admits only the numpy globals an
array pickle needs, so nothing else in the files can run.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.data.cameras import fit_pinhole, get_cameras, world_to_camera

pytestmark = pytest.mark.realdata

REPO_ROOT = Path(__file__).resolve().parents[2]
FILE_3D = "data_3d_humaneva15.npz"
FILE_2D = "data_2d_humaneva15_gt.npz"
SUBJECTS = ("Train/S1", "Train/S2", "Train/S3", "Validate/S1", "Validate/S2", "Validate/S3")
MAX_RMS_PX = 2.0  # the fits reach 0.2-0.8 px

_ARRAY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core is numpy._core under numpy 2
            return super().find_class(module, name)


def _load_pickled(path: Path, key: str):
    """The object stored under ``key`` of an npz whose arrays are pickled (a dict, for these files)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read_header(stream)
        assert dtype == np.dtype(object) and shape == (), f"{path.name}:{key} is not a pickled object"
        return _ArrayOnlyUnpickler(stream, encoding="latin1").load().item()


def _humaneva_dir() -> Path:
    env = os.environ.get("CRISSCROSS_DATA")
    roots = [Path(env), Path(env) / "humaneva"] if env else [REPO_ROOT.parent / "shared" / "datasets" / "humaneva"]
    for root in roots:
        if (root / FILE_3D).is_file() and (root / FILE_2D).is_file():
            return root
    pytest.skip(f"real HumanEva-I data not found ({FILE_3D}, {FILE_2D}; set CRISSCROSS_DATA or provide "
                "../shared/datasets/humaneva)")


@pytest.fixture(scope="module")
def humaneva() -> tuple[dict, dict]:
    root = _humaneva_dir()
    return _load_pickled(root / FILE_3D, "positions_3d"), _load_pickled(root / FILE_2D, "positions_2d")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_humaneva_extrinsics_reproject_the_2d_ground_truth(humaneva, subject):
    positions_3d, positions_2d = humaneva
    take = next(iter(positions_3d[subject]))
    world_mm = torch.from_numpy(np.asarray(positions_3d[subject][take], dtype=np.float64)) * 1000
    cameras = get_cameras("humaneva", subject)
    assert len(positions_2d[subject][take]) == len(cameras)
    for camera, pixels in zip(cameras, positions_2d[subject][take], strict=True):
        pixels = torch.from_numpy(np.asarray(pixels, dtype=np.float64))
        assert pixels.shape == world_mm.shape[:-1] + (2,)
        cam = world_to_camera(world_mm, camera)
        assert float(cam[..., 2].min()) > 1000, f"{subject} {camera.id}: the subject is not in front of the camera"
        focal, center, rms = fit_pinhole(cam, pixels)
        print(
            f"\n{subject} '{take}' ({world_mm.shape[0]} frames) {camera.id}: focal ({focal[0]:.1f}, {focal[1]:.1f}) "
            f"center ({center[0]:.1f}, {center[1]:.1f}) rms {rms:.2f} px",
            end="",
        )
        assert rms < MAX_RMS_PX, f"{subject} {camera.id}: reprojection rms {rms:.2f} px"
        assert min(focal) > 0
        assert 0 < center[0] < camera.res_w and 0 < center[1] < camera.res_h
