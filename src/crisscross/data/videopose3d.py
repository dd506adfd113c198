"""Safe readers for the VideoPose3D npz format of the 2D-to-3D pose-lifting literature.

Source: facebookresearch/VideoPose3D (``DATASETS.md``, ``data/prepare_data_h36m.py``,
``data/prepare_data_humaneva.py``, ``data/prepare_data_2d_h36m_generic.py``, ``run.py``). The files are written with
``np.savez_compressed`` from Python dicts, so every member is a 0-d object array whose payload is a pickle:

- ``data_3d_h36m.npz``: ``positions_3d`` = ``{subject: {action: float32 (T, 32, 3)}}``, world frame, metres, 50 Hz;
  subjects S1 S5 S6 S7 S8 S9 S11.
- ``data_2d_h36m_gt.npz`` and ``data_2d_h36m_cpn_ft_h36m_dbb.npz``: ``positions_2d`` =
  ``{subject: {action: [4 x float32 (T, 17, 2)]}}``, pixels, one array per camera; ``metadata`` = ``{"layout_name",
  "num_joints", "keypoints_symmetry": [[left...], [right...]]}``.
- ``data_3d_humaneva15.npz`` / ``data_2d_humaneva15_gt.npz``: the same structures with subjects ``Train/S1`` ..
  ``Validate/S3``, actions ``"<Action> <take> chunk<k>"``, 15 joints, 3 cameras (640 x 480 pixels), 60 Hz.

A pickle can call any importable function when it is loaded (``np.load(..., allow_pickle=True)`` would run a stored
``os.system`` call). :func:`load_npz_member` therefore parses each ``.npy`` member itself (``numpy.lib.format``
header, then ``allow_pickle=False`` for plain numeric arrays) and unpickles object arrays with an unpickler whose
``find_class`` resolves only the numpy globals that rebuild arrays, dtypes and scalars (``_reconstruct``,
``ndarray``, ``dtype``, ``scalar``, ``_frombuffer``, under both ``numpy.core`` and ``numpy._core``); any other
global is refused before it is imported. Plain containers (dict, list, tuple, str, numbers) need no globals.

Every problem raises :class:`~crisscross.data.errors.DataError` with one line naming the file and the key path, e.g.
``data_3d_h36m.npz: positions_3d['S1']['Walking 1']: expected (T, 32, 3) floats, got (10, 31, 3)``.

:func:`align_h36m` follows VideoPose3D ``run.py`` / ``common/h36m_dataset.py``: the 3D skeleton is reduced from 32
to the 17 joints of the 2D layouts (:data:`H36M_17_FROM_32`), each 2D camera sequence is trimmed to its 3D length
(the videos can be a few frames longer than the mocap) and S11 "Directions" (a corrupted video) is dropped.
"""

from __future__ import annotations

import pickle
import tokenize
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from crisscross.data.errors import NUMPY_FILE_ERRORS, DataError, one_line_error
from crisscross.data.skeleton import H36M_17_FROM_32

try:  # numpy >= 2 (numpy 1.26 also ships the ``numpy._core`` aliases)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy < 1.26
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

__all__ = [
    "H36M_2D_FILES",
    "H36M_3D_FILE",
    "H36M_17_FROM_32",
    "H36M_DROPPED",
    "METADATA_KEYS",
    "align_h36m",
    "frame_counts",
    "h36m_npz_paths",
    "load_npz_member",
    "read_positions_2d",
    "read_positions_3d",
]

H36M_3D_FILE = "data_3d_h36m.npz"
H36M_2D_FILES = {"gt": "data_2d_h36m_gt.npz", "cpn": "data_2d_h36m_cpn_ft_h36m_dbb.npz"}
"""2D files by detections: ground-truth projections, and CPN detections fine-tuned on Human3.6M."""

H36M_DROPPED = (("S11", "Directions"),)
"""(subject, action) pairs that VideoPose3D discards (S11 "Directions": corrupted video)."""

METADATA_KEYS = ("layout_name", "num_joints", "keypoints_symmetry")

#: What reading an untrusted ``.npy``/``.npz`` with numpy and zipfile can raise, to turn into a DataError: a truncated
#: or corrupt zip or zlib stream (BadZipFile, zlib.error, EOFError, OSError), an encrypted or unsupported zip entry
#: (RuntimeError, NotImplementedError), a malformed header (ValueError, or tokenize.TokenError from numpy's repair of
#: old headers), refused pickled data (ValueError), or a header declaring an array too large to allocate
#: (MemoryError). The other file readers (user recordings, keypoints, motion files) catch the same set.

_CORE_GLOBALS = {
    "multiarray": {"_reconstruct": _multiarray._reconstruct, "scalar": _multiarray.scalar},
    "numeric": {"_frombuffer": _numeric._frombuffer},
}
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _core in ("numpy.core", "numpy._core"):
    for _submodule, _names in _CORE_GLOBALS.items():
        for _name, _obj in _names.items():
            _NUMPY_GLOBALS[(f"{_core}.{_submodule}", _name)] = _obj


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle referred to a global that is not one of the numpy array builders."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays, dtypes and scalars and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")


def _read_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fp)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(fp)
    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")


def _unpickle_array(fp: Any, where: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        value = _NumpyOnlyUnpickler(fp, encoding="latin1").load()
    except _ForbiddenGlobal as err:
        raise DataError(f"{where}: pickled object refers to {err.qualname}; only numpy arrays may be stored") from None
    except Exception as err:  # a malformed pickle can fail in many ways (EOFError, TypeError, KeyError, ...)
        raise DataError(f"{where}: malformed pickle ({one_line_error(err)})") from None
    if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
        got = f"array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise DataError(f"{where}: expected a pickled numpy array of shape {tuple(shape)}, got {got}")
    return value


def _read_member(archive: zipfile.ZipFile, member: str, where: str) -> np.ndarray:
    try:
        with archive.open(member) as fp:
            try:
                shape, _fortran, dtype = _read_header(fp)
            except (ValueError, tokenize.TokenError) as err:
                raise DataError(f"{where}: not a .npy array ({one_line_error(err)})") from None
            if dtype.hasobject:
                return _unpickle_array(fp, where, shape)
        with archive.open(member) as fp:
            return npy_format.read_array(fp, allow_pickle=False)
    except DataError:
        raise
    except ValueError as err:  # truncated data, or object fields hidden in a structured dtype
        raise DataError(f"{where}: cannot read the array ({one_line_error(err)})") from None
    except NUMPY_FILE_ERRORS as err:  # a corrupt, encrypted or truncated member, or a header declaring a huge array
        raise DataError(f"{where}: corrupt npz member ({one_line_error(err)})") from None


def load_npz_member(path: str | Path, key: str) -> Any:
    """The array stored under ``key`` in the npz file ``path``, read without trusting any pickle.

    Returns what ``np.load(path, allow_pickle=True)[key]`` would (for a dict saved by ``np.savez``: a 0-d object
    array, whose ``.item()`` is the dict), but object arrays are unpickled with numpy-only globals. Raises
    :class:`DataError` (one line naming the file and key) for a missing or unreadable file, a file that is not an
    npz, a missing key, a malformed member and a pickle that refers to anything but numpy's array builders.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an npz file") from None
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not an npz file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or one_line_error(err)})") from None
    except NUMPY_FILE_ERRORS as err:  # a zip directory that lies about offsets or sizes
        raise DataError(f"{path}: not an npz file ({one_line_error(err)})") from None
    with archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist() if name.endswith(".npy")}
        if key not in members:
            keys = ", ".join(_printable(k) for k in sorted(members)) or "none"  # a damaged name may hold a line break
            raise DataError(f"{path}: no key {key!r} (keys: {keys})")
        return _read_member(archive, members[key], f"{path}: {key}")


def _load_dict(path: Path, key: str) -> dict:
    value = load_npz_member(path, key)
    if not (isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject):
        got = f"{value.dtype} array of shape {value.shape}"
        raise DataError(f"{path}: {key}: expected a pickled dict (0-d object array), got {got}")
    value = value.item()
    if not isinstance(value, dict):
        raise DataError(f"{path}: {key}: expected a pickled dict, got {type(value).__name__}")
    return value


def _check_nested(value: dict, where: str, what: str) -> None:
    """``value`` is a non-empty ``{str: {str: ...}}`` dict."""
    if not value:
        raise DataError(f"{where}: empty (expected {what})")
    for subject, actions in value.items():
        if not isinstance(subject, str):
            raise DataError(f"{where}: subject keys must be strings, got {subject!r}")
        if not isinstance(actions, dict):
            raise DataError(f"{where}[{subject!r}]: expected a dict of actions, got {type(actions).__name__}")
        for action in actions:
            if not isinstance(action, str):
                raise DataError(f"{where}[{subject!r}]: action keys must be strings, got {action!r}")


def _check_positions(value: Any, where: str, joints: int | None, dims: int) -> np.ndarray:
    """``value`` as a float32 (T, J, dims) array of finite numbers (T >= 1; J = ``joints`` if given)."""
    expected = f"expected (T, {joints if joints is not None else 'J'}, {dims}) floats"
    if not isinstance(value, np.ndarray):
        raise DataError(f"{where}: {expected}, got {type(value).__name__}")
    if value.dtype.kind != "f":
        raise DataError(f"{where}: {expected}, got {value.dtype} {value.shape}")
    shape = value.shape
    if len(shape) != 3 or shape[0] < 1 or shape[2] != dims or (joints is not None and shape[1] != joints):
        raise DataError(f"{where}: {expected}, got {shape}")
    array = np.ascontiguousarray(value, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        frame = int(np.argmin(finite.reshape(len(array), -1).all(axis=1)))
        bad = array[frame][~finite[frame]][0]
        kind = "NaN" if np.isnan(bad) else "inf"
        raise DataError(f"{where}: contains {kind} (frame {frame})")
    return array


def read_positions_3d(path: str | Path, joints: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``positions_3d`` of a VideoPose3D 3D file: ``{subject: {action: float32 (T, J, 3)}}``, validated.

    ``joints`` fixes J (32 for Human3.6M, 15 for HumanEva-15); by default the first sequence sets it and every
    other must match. Raises :class:`DataError` naming the file and the key path of the first bad entry.
    """
    path = Path(path)
    where = f"{path}: positions_3d"
    data = _load_dict(path, "positions_3d")
    _check_nested(data, where, "{subject: {action: (T, J, 3) array}}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in data.items():
        out[subject] = {}
        for action, positions in actions.items():
            array = _check_positions(positions, f"{where}[{subject!r}][{action!r}]", joints, 3)
            joints = array.shape[1]
            out[subject][action] = array
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _symmetry(value: Any, where: str, num_joints: int) -> list[list[int]]:
    sides = value.tolist() if isinstance(value, np.ndarray) else value
    ok = isinstance(sides, list | tuple) and len(sides) == 2
    if ok:
        sides = [side.tolist() if isinstance(side, np.ndarray) else side for side in sides]
        ok = all(isinstance(side, list | tuple) for side in sides) and len(sides[0]) == len(sides[1])
    if not ok or not all(_is_int(j) and 0 <= j < num_joints for side in sides for j in side):
        got = " ".join(repr(value).split())
        raise DataError(f"{where}: expected [[left joints], [right joints]] of equal length with indices in "
                        f"0..{num_joints - 1}, got {got[:120]}")
    return [[int(j) for j in side] for side in sides]


def _check_metadata(value: Any, where: str, joints: int | None) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a dict with keys {', '.join(METADATA_KEYS)}, got {type(value).__name__}")
    missing = [k for k in METADATA_KEYS if k not in value]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(missing)} (has: {', '.join(map(str, value)) or 'none'})")
    layout, num_joints = value["layout_name"], value["num_joints"]
    if not isinstance(layout, str):
        raise DataError(f"{where}['layout_name']: expected a string, got {type(layout).__name__}")
    if not _is_int(num_joints) or num_joints < 1:
        raise DataError(f"{where}['num_joints']: expected a positive int, got {num_joints!r}")
    if joints is not None and num_joints != joints:
        raise DataError(f"{where}['num_joints']: expected {joints}, got {num_joints}")
    symmetry = _symmetry(value["keypoints_symmetry"], f"{where}['keypoints_symmetry']", int(num_joints))
    return {**value, "layout_name": layout, "num_joints": int(num_joints), "keypoints_symmetry": symmetry}


def read_positions_2d(
    path: str | Path, joints: int | None = None, cameras: int | None = None
) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """``positions_2d`` and ``metadata`` of a VideoPose3D 2D file, validated.

    Positions are ``{subject: {action: [float32 (T, J, 2) per camera]}}`` (camera sequences may differ in length);
    J is ``joints`` if given and must equal ``metadata["num_joints"]``; the number of cameras is ``cameras`` if
    given, else that of the first action, and is the same for every action. The metadata comes back with
    ``layout_name`` (str), ``num_joints`` (int) and ``keypoints_symmetry`` (two equal-length lists of joint indices)
    checked and as plain Python types; other metadata keys are kept as stored.
    """
    path = Path(path)
    metadata = _check_metadata(_load_dict(path, "metadata"), f"{path}: metadata", joints)
    joints = metadata["num_joints"]
    where = f"{path}: positions_2d"
    data = _load_dict(path, "positions_2d")
    _check_nested(data, where, "{subject: {action: [(T, J, 2) array per camera]}}")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in data.items():
        out[subject] = {}
        for action, views in actions.items():
            at = f"{where}[{subject!r}][{action!r}]"
            if not isinstance(views, list | tuple) or not views:
                got = f"{len(views)} cameras" if isinstance(views, list | tuple) else type(views).__name__
                raise DataError(f"{at}: expected a list of per-camera arrays, got {got}")
            if cameras is not None and len(views) != cameras:
                raise DataError(f"{at}: expected {cameras} cameras, got {len(views)}")
            cameras = len(views)
            out[subject][action] = [_check_positions(v, f"{at}[{i}]", joints, 2) for i, v in enumerate(views)]
    return out, metadata


def h36m_npz_paths(folder: str | Path, detections: str = "gt") -> tuple[Path, Path]:
    """``(data_3d_h36m.npz, 2D file)`` in ``folder``; ``detections`` is ``"gt"`` or ``"cpn"`` (:data:`H36M_2D_FILES`).

    Raises :class:`DataError` for unknown detections or naming the first file that is missing.
    """
    if detections not in H36M_2D_FILES:
        raise DataError(f"unknown Human3.6M 2D detections {detections!r}; choices: {', '.join(H36M_2D_FILES)}")
    folder = Path(folder)
    path_3d, path_2d = folder / H36M_3D_FILE, folder / H36M_2D_FILES[detections]
    for path, what in ((path_3d, "3D positions"), (path_2d, f"2D positions ({detections})")):
        if not path.is_file():
            raise DataError(f"{path}: file not found (VideoPose3D Human3.6M {what})")
    return path_3d, path_2d


def _printable(key: str) -> str:
    """A subject or action name for a message: as is, or its repr when it holds a line break or the like."""
    return key if key.isprintable() else repr(key)


def _matching_keys(left: dict, right: dict, where: str, what: str, dropped: set[str]) -> list[str]:
    """Keys of ``left`` (in order) less ``dropped``; raises when the two sides differ otherwise."""
    only_3d = [k for k in left if k not in right and k not in dropped]
    only_2d = [k for k in right if k not in left and k not in dropped]
    if only_3d:
        raise DataError(f"{where}{what} {only_3d[0]!r} is in the 3D positions but missing from the 2D positions")
    if only_2d:
        raise DataError(f"{where}{what} {only_2d[0]!r} is in the 2D positions but missing from the 3D positions")
    return [k for k in left if k not in dropped]


def align_h36m(
    positions_3d: dict[str, dict[str, np.ndarray]], positions_2d: dict[str, dict[str, list[np.ndarray]]]
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, list[np.ndarray]]]]:
    """Human3.6M 3D and 2D positions matched as VideoPose3D trains on them.

    3D sequences go from 32 to 17 joints (:data:`H36M_17_FROM_32`, new arrays); each 2D camera sequence is cut to
    the length of its 3D sequence (views of the inputs); the pairs in :data:`H36M_DROPPED` are left out on both
    sides. Raises :class:`DataError` naming the subject and action when a subject or action is on one side only,
    a 3D sequence does not have 32 joints, or a 2D sequence is shorter than its 3D one.
    """
    dropped: dict[str, set[str]] = {}
    for subject, action in H36M_DROPPED:
        dropped.setdefault(subject, set()).add(action)
    out_3d: dict[str, dict[str, np.ndarray]] = {}
    out_2d: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject in _matching_keys(positions_3d, positions_2d, "", "subject", set()):
        actions = _matching_keys(
            positions_3d[subject], positions_2d[subject], f"{_printable(subject)}: ", "action",
            dropped.get(subject, set())
        )
        out_3d[subject], out_2d[subject] = {}, {}
        for action in actions:
            poses, views = positions_3d[subject][action], positions_2d[subject][action]
            if poses.ndim != 3 or poses.shape[1] != 32:
                raise DataError(f"{_printable(subject)} {action!r}: expected 32-joint 3D positions (T, 32, 3), got "
                                f"{poses.shape}")
            length = poses.shape[0]
            for camera, view in enumerate(views):
                if view.shape[0] < length:
                    raise DataError(f"{_printable(subject)} {action!r}: 2D camera {camera} has {view.shape[0]} "
                                    f"frames, fewer than the {length} frames of the 3D sequence")
            out_3d[subject][action] = poses[:, list(H36M_17_FROM_32)]
            out_2d[subject][action] = [view[:length] for view in views]
    return out_3d, out_2d


def frame_counts(positions_3d: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, int]]:
    """``{subject: {action: number of frames}}`` of a ``positions_3d`` dict."""
    return {subject: {action: len(array) for action, array in actions.items()}
            for subject, actions in positions_3d.items()}
