"""The lifting datasets: three sources of 2D keypoints with their 3D poses, each as a dataset registry entry.

* ``h36m-npz`` / ``h36m-npz-cpn``: the full Human3.6M in VideoPose3D's npz files (``data_3d_h36m.npz`` with
  ``data_2d_h36m_gt.npz`` or ``data_2d_h36m_cpn_ft_h36m_dbb.npz``), read as that project reads them (17 joints,
  2D trimmed to the 3D length, S11 Directions dropped); train S1 S5 S6 S7 S8, test S9 S11. The standard benchmark.
* ``h36m-expmap`` / ``h36m-expmap-noisy2d``: the exp-map files of the forecasting data put back into the world frame
  (:mod:`crisscross.data.h36m_world`) and projected with each subject's 4 real cameras; train S1 S6 S7 S8 (S5 is
  absent from the shared copy), test S9 S11, plus S5 when a folder has it. Every subject has the same bone lengths
  here, which removes the scale ambiguity a real lifter faces: it is easier than the benchmark and its numbers are
  not comparable with the literature. The noisy variant adds 2D noise resembling a detector's (below).
* ``humaneva``: HumanEva-I in VideoPose3D's npz files (``data_3d_humaneva15.npz``, ``data_2d_humaneva15_gt.npz``):
  15 joints, 3 cameras, 60 Hz; train ``Train/S1..S3``, test ``Validate/S1..S3``. Comparable with the literature.

Every source gives a :class:`~crisscross.data.lifting.LiftingSet`: keypoints in normalised screen coordinates and
camera-frame 3D poses in millimetres, root-relative; one sequence per recording and camera.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crisscross.data.cache import ArrayCache, file_digest
from crisscross.data.cameras import Camera, get_cameras, image_coordinates, normalize_screen, project, world_to_camera
from crisscross.data.errors import DataError
from crisscross.data.h36m import (
    H36M_ACTIONS,
    H36M_SOURCE_FPS,
    PREPROCESSING_VERSION,
    check_expmap_file,
    find_h36m_root,
    h36m_file,
)
from crisscross.data.h36m_world import world_file, world_sequence_paths
from crisscross.data.lifting import LiftingKey, LiftingSet
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import (
    H36M_17_FROM_32,
    H36M_17_SKELETON,
    H36M_SKELETON,
    HUMANEVA_15_SKELETON,
    Skeleton,
)
from crisscross.data.videopose3d import align_h36m, h36m_npz_paths, read_positions_2d, read_positions_3d

__all__ = ["H36M_EXPMAP_DATASET", "H36M_EXPMAP_NOISY_DATASET", "H36M_NPZ_CPN_DATASET", "H36M_NPZ_DATASET",
           "HUMANEVA_DATASET", "LIFTING_DATASETS", "detector_noise"]

LIFTING_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "h36m-npz": {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")},
    "h36m-expmap": {"train": ("S1", "S6", "S7", "S8"), "test": ("S5", "S9", "S11")},  # S5 only where present
    "humaneva": {"train": ("Train/S1", "Train/S2", "Train/S3"), "test": ("Validate/S1", "Validate/S2", "Validate/S3")},
}
LIFTING_SPLITS["h36m-npz-cpn"] = LIFTING_SPLITS["h36m-npz"]  # same subjects, CPN detections instead of GT 2D
HUMANEVA_FILES = ("data_3d_humaneva15.npz", "data_2d_humaneva15_gt.npz")
HUMANEVA_FPS = 60.0
_MM_PER_M = 1000.0
_EXPMAP_VERSION = "h36m-expmap-lift-v1"
# Detector-like 2D noise (pixels): a smooth per-joint jitter (AR(1), correlation 0.9 between frames) whose size
# grows towards the extremities, plus rare gross errors (1% of joints, 20 to 60 px), the two kinds of error a
# detector such as CPN makes. Seeded by the sequence's identity, so a split is the same on every load.
_NOISE_STD_PX = {"Hips": 3.0, "RightHip": 4.0, "LeftHip": 4.0, "Spine": 3.0, "Thorax": 3.0, "Neck": 4.0,
                 "Head": 4.0, "RightKnee": 5.0, "LeftKnee": 5.0, "RightShoulder": 4.0, "LeftShoulder": 4.0,
                 "RightElbow": 6.0, "LeftElbow": 6.0, "RightAnkle": 7.0, "LeftAnkle": 7.0, "RightWrist": 8.0,
                 "LeftWrist": 8.0}
_NOISE_CORRELATION, _OUTLIER_SHARE, _OUTLIER_PX = 0.9, 0.01, (20.0, 60.0)


def detector_noise(frames: int, skeleton: Skeleton, seed: int) -> np.ndarray:
    """Array[T, J, 2] of pixel offsets resembling a 2D detector's errors (see the constants above)."""
    rng = np.random.default_rng(seed)
    std = np.array([_NOISE_STD_PX.get(name, 5.0) for name in skeleton.joint_names])[:, None]
    innovation = rng.standard_normal((frames, skeleton.num_joints, 2)) * std * np.sqrt(1 - _NOISE_CORRELATION ** 2)
    noise = np.empty_like(innovation)
    noise[0] = rng.standard_normal((skeleton.num_joints, 2)) * std
    for t in range(1, frames):
        noise[t] = _NOISE_CORRELATION * noise[t - 1] + innovation[t]
    gross = rng.random((frames, skeleton.num_joints)) < _OUTLIER_SHARE
    angle = rng.uniform(0, 2 * np.pi, gross.shape)
    size = rng.uniform(*_OUTLIER_PX, gross.shape)
    noise += gross[..., None] * size[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    return noise


def _camera_view(world_mm: np.ndarray, camera: Camera, pixels: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """``(keypoints [T, J, 2] normalised, camera-frame positions [T, J, 3] mm)``; ``pixels`` replaces the projection."""
    cam = world_to_camera(torch.as_tensor(world_mm, dtype=torch.float64), camera)
    px = torch.as_tensor(pixels, dtype=torch.float64) if pixels is not None else project(cam, camera)
    keypoints = normalize_screen(px, camera.res_w, camera.res_h)
    return keypoints.float().numpy(), cam.float().numpy()


def _subjects(name: str, split: str, present: Sequence[str] | None = None) -> tuple[str, ...]:
    wanted = LIFTING_SPLITS[name][split]
    return tuple(s for s in wanted if present is None or s in present)


def _split_action(action: str) -> tuple[str, str]:
    """``"Walking 1"`` -> ``("Walking", "1")``; ``"walking_1"`` -> ``("walking", "1")``."""
    head, _, tail = action.replace("_", " ").partition(" ")
    return head, tail


def _wanted(action: str, actions: Sequence[str] | None) -> bool:
    return actions is None or action in actions


def _npz_set(name: str, split: str, positions_3d: dict, positions_2d: dict | None, rig: str, skeleton: Skeleton,
             fps: float, actions: Sequence[str] | None) -> LiftingSet:
    """A LiftingSet from VideoPose3D-style dicts (3D world metres; 2D pixels per camera)."""
    keypoints, positions, keys = [], [], []
    for subject in _subjects(name, split, list(positions_3d)):
        cameras = get_cameras(rig, subject)
        for action, world_m in positions_3d[subject].items():
            group, take = _split_action(action)
            if not _wanted(group, actions):
                continue
            for c, camera in enumerate(cameras):
                pixels = positions_2d[subject][action][c] if positions_2d is not None else None
                kp, cam = _camera_view(world_m * _MM_PER_M, camera, pixels)
                keypoints.append(kp)
                positions.append(cam)
                keys.append(LiftingKey(subject, group, take, camera.id))
    return LiftingSet.from_sequences(keypoints, positions, keys, skeleton, fps, dataset=name, split=split)


def _read_h36m_npz(path_3d: Path, path_2d: Path) -> tuple[dict, dict]:
    """VideoPose3D's Human3.6M 3D and 2D files read and matched (:func:`align_h36m`); a mismatch between the two
    (a subject or action on one side only, a 2D sequence shorter than its 3D one) is a DataError naming both."""
    positions_2d, _ = read_positions_2d(path_2d, joints=17, cameras=4)
    positions_3d = read_positions_3d(path_3d, joints=32)
    try:
        return align_h36m(positions_3d, positions_2d)
    except DataError as err:
        raise DataError(f"{path_3d} and {path_2d.name} do not match: {err}") from None


def _load_h36m_npz(detections: str, name: str):
    def load(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> LiftingSet:
        aligned_3d, aligned_2d = _read_h36m_npz(*h36m_npz_paths(folder, detections))
        return _npz_set(name, split, aligned_3d, aligned_2d, "h36m", H36M_17_SKELETON, H36M_SOURCE_FPS, actions)

    return load


def _expmap_arrays(path: Path, subject: str, cache: ArrayCache) -> dict[str, np.ndarray]:
    """Keypoints (pixels) and camera-frame positions of one file in the subject's 4 cameras, cached by content:
    the world motion is rebuilt (parse, integration, forward kinematics) only when the cache misses."""
    key = f"{_EXPMAP_VERSION}-{file_digest(path)}-{subject}"
    cached = cache.load(key)
    if cached is None:
        world = world_file(path)  # a DataError for values too large to give finite poses
        joints = world[:, list(H36M_17_FROM_32)]
        views = [_camera_view(joints, camera) for camera in get_cameras("h36m", subject)]
        cached = {"keypoints": np.stack([v[0] for v in views]), "positions": np.stack([v[1] for v in views])}
        cache.save(key, cached)
    return cached


def _load_h36m_expmap(noisy: bool, name: str):
    def load(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> LiftingSet:
        root = find_h36m_root(folder)
        subjects = _subjects("h36m-expmap", split, [p.name for p in root.iterdir() if p.is_dir()])
        chosen = [a for a in H36M_ACTIONS if _wanted(a, actions)]
        keypoints, positions, keys = [], [], []
        for (subject, action, subaction), path in world_sequence_paths(root, subjects, chosen).items():
            arrays = _expmap_arrays(path, subject, cache)
            for c, camera in enumerate(get_cameras("h36m", subject)):
                kp = arrays["keypoints"][c]
                if noisy:
                    seed = zlib.crc32(f"{subject}/{action}_{subaction}/{camera.id}".encode())
                    pixels = image_coordinates(torch.as_tensor(kp, dtype=torch.float64), camera.res_w, camera.res_h)
                    pixels = pixels + torch.as_tensor(detector_noise(len(kp), H36M_17_SKELETON, seed))
                    kp = normalize_screen(pixels, camera.res_w, camera.res_h).float().numpy()
                keypoints.append(kp)
                positions.append(arrays["positions"][c])
                keys.append(LiftingKey(subject, action, str(subaction), camera.id))
        return LiftingSet.from_sequences(keypoints, positions, keys, H36M_17_SKELETON, H36M_SOURCE_FPS,
                                         dataset=name, split=split)

    return load


def find_humaneva_root(folder: Path) -> Path | None:
    """The folder holding both HumanEva-I npz files: ``folder`` or its ``humaneva/`` subfolder."""
    for candidate in (folder, folder / "humaneva"):
        if all((candidate / f).is_file() for f in HUMANEVA_FILES):
            return candidate
    return None


def _label(subject: str, action: str) -> str:
    """``subject/action`` for a message; its repr when a name holds a line break or the like."""
    text = f"{subject}/{action}"
    return text if text.isprintable() else repr(text)


def _read_humaneva(path_3d: Path, path_2d: Path) -> tuple[dict, dict]:
    """HumanEva-15 3D and 2D positions; every 3D sequence must have its 2D views, each of the same length, else a
    DataError names the 2D file and the sequences."""
    positions_3d = read_positions_3d(path_3d, joints=15)
    positions_2d, _ = read_positions_2d(path_2d, joints=15, cameras=3)
    pairs = [(s, a, poses) for s, actions in positions_3d.items() for a, poses in actions.items()]
    missing = [_label(s, a) for s, a, _ in pairs if a not in positions_2d.get(s, {})]
    if missing:
        raise DataError(f"{path_2d}: no 2D positions for {', '.join(missing[:5])} (in {path_3d.name})")
    short = [_label(s, a) for s, a, poses in pairs if any(len(v) != len(poses) for v in positions_2d[s][a])]
    if short:
        raise DataError(f"{path_2d}: 2D and 3D lengths differ for {', '.join(short[:5])}")
    return positions_3d, positions_2d


def _load_humaneva(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> LiftingSet:
    root = find_humaneva_root(folder)
    positions_3d, positions_2d = _read_humaneva(root / HUMANEVA_FILES[0], root / HUMANEVA_FILES[1])
    return _npz_set("humaneva", split, positions_3d, positions_2d, "humaneva", HUMANEVA_15_SKELETON, HUMANEVA_FPS,
                    actions)


def _subject_availability(report: DataDirReport, name: str, present: Sequence[str]) -> None:
    for split, subjects in LIFTING_SPLITS[name].items():
        found = [s for s in subjects if s in present]
        missing = [s for s in subjects if s not in present]
        report.splits[split] = (f"available: {', '.join(found)}" if found else "unavailable") + (
            f" (absent: {', '.join(missing)})" if missing else "")


def _check_npz(report: DataDirReport, name: str, paths: Sequence[Path], read) -> None:
    """Parse the npz files of a VideoPose3D-format dataset into ``report``; ``read`` returns the subjects."""
    missing = [p for p in paths if not p.is_file()]
    report.absent += [p.name for p in missing]
    if missing:
        report.errors.append(f"{report.root}: missing {', '.join(p.name for p in missing)}")
        return
    try:
        subjects = read()
    except DataError as err:
        report.malformed.append(str(err))
        return
    report.present += [p.name for p in paths]
    _subject_availability(report, name, subjects)


def _check_h36m_npz(detections: str, name: str):
    def check(report: DataDirReport, cache: ArrayCache) -> None:
        try:
            paths = h36m_npz_paths(report.root, detections)
        except DataError as err:
            report.errors.append(str(err))
            return

        def read() -> list[str]:
            return list(_read_h36m_npz(*paths)[0])

        _check_npz(report, "h36m-npz", paths, read)
    return check


def _check_humaneva(report: DataDirReport, cache: ArrayCache) -> None:
    paths = [report.root / f for f in HUMANEVA_FILES]

    def read() -> list[str]:
        return list(_read_humaneva(*paths)[0])

    _check_npz(report, "humaneva", paths, read)


def _check_h36m_expmap(report: DataDirReport, cache: ArrayCache) -> None:
    """The exp-map files of every lifting subject, each parsed once through the forecasting loader's cache."""
    root = report.root
    present = [p.name for p in root.iterdir() if p.is_dir()]
    for subject in sorted({s for subjects in LIFTING_SPLITS["h36m-expmap"].values() for s in subjects}):
        if subject not in present:
            report.absent.append(f"{subject}/ (subject folder)")
            continue
        for action in H36M_ACTIONS:
            for subaction in (1, 2):
                path = h36m_file(root, subject, action, subaction)
                if not path.is_file():
                    report.absent.append(str(path.relative_to(root)))
                    continue
                check_expmap_file(report, path, H36M_SKELETON, cache)
    _subject_availability(report, "h36m-expmap", present)


def _h36m_npz_root(folder: Path) -> Path | None:
    return folder if (folder / "data_3d_h36m.npz").is_file() else None


_NOT_COMPARABLE = "one skeleton for every subject: easier than the benchmark, numbers not comparable with papers"
H36M_NPZ_DATASET = DatasetEntry(
    name="h36m-npz", description="Human3.6M lifting, VideoPose3D npz files, GT 2D; train S1 S5 S6 S7 S8, test S9 S11",
    needs_data_dir=True, splits=("train", "test"), fps=float(H36M_SOURCE_FPS), skeleton="h36m17",
    load=_load_h36m_npz("gt", "h36m-npz"), check=_check_h36m_npz("gt", "h36m-npz"), find_root=_h36m_npz_root,
    expected_layout="data_3d_h36m.npz and data_2d_h36m_gt.npz (VideoPose3D's files)", task="lifting")
H36M_NPZ_CPN_DATASET = DatasetEntry(
    name="h36m-npz-cpn", description="Human3.6M lifting, VideoPose3D npz files, CPN detections; same splits",
    needs_data_dir=True, splits=("train", "test"), fps=float(H36M_SOURCE_FPS), skeleton="h36m17",
    load=_load_h36m_npz("cpn", "h36m-npz-cpn"), check=_check_h36m_npz("cpn", "h36m-npz-cpn"),
    find_root=_h36m_npz_root,
    expected_layout="data_3d_h36m.npz and data_2d_h36m_cpn_ft_h36m_dbb.npz (VideoPose3D's files)", task="lifting")
H36M_EXPMAP_DATASET = DatasetEntry(
    name="h36m-expmap", description=f"Human3.6M exp-map motion seen by the 4 real cameras, GT 2D; train S1 S6 S7 S8, "
    f"test S9 S11 (+S5); {_NOT_COMPARABLE}", needs_data_dir=True, splits=("train", "test"),
    fps=float(H36M_SOURCE_FPS), skeleton="h36m17", load=_load_h36m_expmap(False, "h36m-expmap"),
    check=_check_h36m_expmap, find_root=find_h36m_root, archive_patterns=("*h36m*.tar*", "*h3.6m*.tar*"),
    expected_layout="S1 ... S11 folders of exp-map files, or an h36m-*.tar.xz archive",
    cache_namespace=PREPROCESSING_VERSION, task="lifting")
H36M_EXPMAP_NOISY_DATASET = DatasetEntry(
    name="h36m-expmap-noisy2d", description="h36m-expmap with detector-like 2D noise (smooth jitter of 3 to 8 px, "
    f"1% gross errors of 20 to 60 px); {_NOT_COMPARABLE}", needs_data_dir=True, splits=("train", "test"),
    fps=float(H36M_SOURCE_FPS), skeleton="h36m17", load=_load_h36m_expmap(True, "h36m-expmap-noisy2d"),
    check=_check_h36m_expmap, find_root=find_h36m_root, archive_patterns=("*h36m*.tar*", "*h3.6m*.tar*"),
    expected_layout="S1 ... S11 folders of exp-map files, or an h36m-*.tar.xz archive",
    cache_namespace=PREPROCESSING_VERSION, task="lifting")
HUMANEVA_DATASET = DatasetEntry(
    name="humaneva", description="HumanEva-I lifting, VideoPose3D npz files, 15 joints, 3 cameras, 60 Hz; train "
    "Train/S1-S3, test Validate/S1-S3", needs_data_dir=True, splits=("train", "test"), fps=HUMANEVA_FPS,
    skeleton="humaneva15", load=_load_humaneva, check=_check_humaneva, find_root=find_humaneva_root,
    expected_layout="data_3d_humaneva15.npz and data_2d_humaneva15_gt.npz (VideoPose3D's files)", task="lifting")

LIFTING_DATASETS = (H36M_NPZ_DATASET, H36M_NPZ_CPN_DATASET, H36M_EXPMAP_DATASET, H36M_EXPMAP_NOISY_DATASET,
                    HUMANEVA_DATASET)
