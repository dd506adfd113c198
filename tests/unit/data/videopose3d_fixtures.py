"""Writers of small files in the VideoPose3D npz format, for the tests of ``crisscross.data.videopose3d``.

Files are written as VideoPose3D writes them: ``np.savez_compressed`` of Python dicts, which become 0-d object
arrays pickled inside the ``.npy`` members. :func:`write_raw_npy_npz` builds an npz by hand around any pickle
payload, for the files that must be refused.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

H36M_SUBJECTS = ("S1", "S11")
H36M_ACTIONS = ("Walking", "Directions")
H36M_METADATA = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13],
                                                                                 [1, 2, 3, 14, 15, 16]]}
H36M_EXTRA_2D_FRAMES = 2

HUMANEVA_SUBJECTS = ("Train/S1", "Validate/S1")
HUMANEVA_ACTIONS = ("Walking 1 chunk0", "Walking 1 chunk2", "Box 1 chunk0")
HUMANEVA_METADATA = {"layout_name": "humaneva15", "num_joints": 15,
                     "keypoints_symmetry": [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]]}


class NotAnArray:
    """A user class: its pickle refers to ``videopose3d_fixtures.NotAnArray``, which the safe reader refuses."""

    def __init__(self, value: int = 1):
        self.value = value


def h36m_positions(seed: int = 0) -> tuple[dict, dict]:
    """``(positions_3d, positions_2d)``: 2 subjects x 2 actions, 32-joint 3D in metres, 4 cameras of 17-joint 2D.

    Each 2D camera sequence is :data:`H36M_EXTRA_2D_FRAMES` longer than its 3D one, as the real videos can be.
    """
    rng = np.random.default_rng(seed)
    positions_3d: dict = {}
    positions_2d: dict = {}
    for s, subject in enumerate(H36M_SUBJECTS):
        positions_3d[subject], positions_2d[subject] = {}, {}
        for a, action in enumerate(H36M_ACTIONS):
            length = 10 + 3 * s + a
            positions_3d[subject][action] = rng.normal(0.0, 0.5, (length, 32, 3)).astype(np.float32)
            positions_2d[subject][action] = [
                rng.uniform(0.0, 1000.0, (length + H36M_EXTRA_2D_FRAMES, 17, 2)).astype(np.float32) for _ in range(4)
            ]
    return positions_3d, positions_2d


def humaneva_positions(seed: int = 0) -> tuple[dict, dict]:
    """``(positions_3d, positions_2d)`` shaped as the HumanEva-15 files: 15 joints, 3 cameras, equal lengths."""
    rng = np.random.default_rng(seed)
    positions_3d: dict = {}
    positions_2d: dict = {}
    for s, subject in enumerate(HUMANEVA_SUBJECTS):
        positions_3d[subject], positions_2d[subject] = {}, {}
        for a, action in enumerate(HUMANEVA_ACTIONS):
            length = 5 + 2 * s + a
            positions_3d[subject][action] = rng.normal(0.0, 0.5, (length, 15, 3)).astype(np.float32)
            positions_2d[subject][action] = [
                (rng.uniform(0.0, 1.0, (length, 15, 2)) * [640, 480]).astype(np.float32) for _ in range(3)
            ]
    return positions_3d, positions_2d


def write_3d(path: Path, positions_3d: object) -> Path:
    """``np.savez_compressed(path, positions_3d=...)``, as ``prepare_data_h36m.py`` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, positions_3d=positions_3d)
    return path


def write_2d(path: Path, positions_2d: object, metadata: object) -> Path:
    """``np.savez_compressed(path, positions_2d=..., metadata=...)``, as the 2D preparation scripts do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, positions_2d=positions_2d, metadata=metadata)
    return path


def write_h36m(folder: Path, detections: str = "gt", seed: int = 0) -> tuple[Path, Path, dict, dict]:
    """The Human3.6M 3D file and one 2D file in ``folder``; returns both paths and the positions written."""
    positions_3d, positions_2d = h36m_positions(seed)
    name_2d = {"gt": "data_2d_h36m_gt.npz", "cpn": "data_2d_h36m_cpn_ft_h36m_dbb.npz"}[detections]
    path_3d = write_3d(folder / "data_3d_h36m.npz", positions_3d)
    path_2d = write_2d(folder / name_2d, positions_2d, H36M_METADATA)
    return path_3d, path_2d, positions_3d, positions_2d


def write_humaneva(folder: Path, seed: int = 0) -> tuple[Path, Path, dict, dict]:
    """The two HumanEva-15 files in ``folder``; returns both paths and the positions written."""
    positions_3d, positions_2d = humaneva_positions(seed)
    path_3d = write_3d(folder / "data_3d_humaneva15.npz", positions_3d)
    path_2d = write_2d(folder / "data_2d_humaneva15_gt.npz", positions_2d, HUMANEVA_METADATA)
    return path_3d, path_2d, positions_3d, positions_2d


def object_npy_header(shape: tuple[int, ...] = ()) -> bytes:
    """The ``.npy`` magic and version-1.0 header of an object array of ``shape``."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_raw_npy_npz(path: Path, members: dict[str, bytes]) -> Path:
    """An npz built by hand: each ``key.npy`` member is the given bytes (header and payload) stored as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, data in members.items():
            archive.writestr(f"{key}.npy", data)
    return path


def os_system_pickle(command: str) -> bytes:
    """A protocol-0 pickle that calls ``os.system(command)`` when loaded by an unrestricted unpickler."""
    return b"cos\nsystem\n(V" + command.encode("raw_unicode_escape") + b"\ntR."


def object_array_pickle(value: object, protocol: int = 3) -> bytes:
    """The pickle of a 0-d object array holding ``value`` (``np.save`` uses protocol 3)."""
    array = np.empty((), dtype=object)
    array[()] = value
    return pickle.dumps(array, protocol=protocol)
