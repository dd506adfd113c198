"""The dataset registry: a new dataset is one ``register_dataset`` call, with no edit to the generic entry points."""

import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from crisscross.data.cache import ArrayCache
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
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import H36M_SKELETON

TOY_JOINTS = H36M_SKELETON.num_joints


def _toy_root(folder: Path) -> Path | None:
    """The ``toy/`` folder of ``<take>.npy`` position files, directly or one level down."""
    for candidate in (folder / "toy", folder / "data" / "toy"):
        if candidate.is_dir():
            return candidate
    return None


def _read_take(path: Path) -> np.ndarray:
    positions = np.load(path)
    if positions.ndim != 3 or positions.shape[1:] != (TOY_JOINTS, 3):
        raise DataError(f"{path}: expected positions [frames, {TOY_JOINTS}, 3], got {positions.shape}")
    return positions


def _load_toy(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> MotionSet:
    paths = sorted(_toy_root(folder).glob("*.npy"))
    names = [p.stem for p in paths if actions is None or p.stem in actions]
    sequences = [_read_take(p) for p in paths if p.stem in names]
    keys = [SequenceKey("T1", name, 1) for name in names]
    return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, 25.0, dataset="toy", split=split)


def _check_toy(report: DataDirReport, cache: ArrayCache) -> None:
    files = sorted(report.root.glob("*.npy"))
    for path in files:
        try:
            _read_take(path)
            report.present.append(path.name)
        except DataError as err:
            report.malformed.append(str(err))
    report.splits["all"] = f"available: {len(files)} takes"


@pytest.fixture
def toy_dataset():
    """A throwaway dataset entry, registered for one test and removed afterwards."""
    entry = register_dataset(DatasetEntry(
        name="toy", description="throwaway test dataset", needs_data_dir=True, splits=("all",), fps=25.0,
        skeleton="h36m", load=_load_toy, check=_check_toy, find_root=_toy_root, archive_patterns=("*toy*.tar*",),
        expected_layout="toy/<take>.npy files, or a toy-*.tar.xz archive",
    ))
    yield entry
    unregister_dataset("toy")
    assert "toy" not in DATASETS


def _write_toy(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    for take, frames in (("wave", 30), ("walk", 40)):
        path = folder / "toy" / f"{take}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rng.normal(0, 100, size=(frames, TOY_JOINTS, 3)).astype(np.float32))
    return folder


def test_registered_dataset_loads_and_checks_through_the_generic_entry_points(toy_dataset, tmp_path: Path):
    assert DATASETS["toy"] is toy_dataset and get_dataset_info("toy").fps == 25.0
    folder = _write_toy(tmp_path / "data")
    motion = load_motion("toy", "all", data_dir=folder, cache_dir=tmp_path / "cache")
    assert motion.dataset == "toy" and motion.num_sequences == 2 and motion.num_frames == 70
    assert load_motion("toy", "all", data_dir=folder, actions=["walk"]).num_frames == 40
    with pytest.raises(DataError, match="splits: all"):
        load_motion("toy", "train", data_dir=folder)

    report = check_data_dir("toy", folder, cache_dir=tmp_path / "cache")
    assert report.ok and report.root == folder / "toy" and report.present == ["walk.npy", "wave.npy"]
    assert report.splits == {"all": "available: 2 takes"}
    np.save(folder / "toy" / "bad.npy", np.zeros((5, 3)))
    report = check_data_dir("toy", folder)
    assert not report.ok and "bad.npy: expected positions" in report.malformed[0]


def test_registered_dataset_finds_its_archive_and_names_its_layout(toy_dataset, tmp_path: Path):
    source = _write_toy(tmp_path / "source")
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "toy-v1.tar.xz", "w:xz") as tar:
        tar.add(source / "toy", arcname="data/toy")
    found = find_data_dir("toy", archives, cache_dir=tmp_path / "cache")
    assert found == tmp_path / "cache" / "datasets" / "toy-v1"
    assert load_motion("toy", "all", data_dir=archives, cache_dir=tmp_path / "cache").num_sequences == 2

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no toy data found; expected toy/<take>\.npy files"):
        find_data_dir("toy", empty)
    assert "no toy data found" in check_data_dir("toy", empty).errors[0]


def test_duplicate_registration_raises_and_keeps_the_first_entry(toy_dataset):
    before = dict(DATASETS)
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_dataset(DatasetEntry(name="toy", description="another", needs_data_dir=False, splits=("all",),
                                      fps=25.0, skeleton="h36m", load=_load_toy, check=_check_toy))
    with pytest.raises(ValueError, match="'h36m' is already registered"):
        register_dataset(DATASETS["h36m"])
    assert DATASETS == before and DATASETS["toy"] is toy_dataset
    with pytest.raises(TypeError, match="expects a DatasetEntry"):
        register_dataset("toy")


def test_unknown_names_list_the_registered_ones(toy_dataset):
    assert DatasetInfo is DatasetEntry
    with pytest.raises(DataError, match="unknown dataset 'nope'; known datasets: synthetic, h36m, cmu, npz, h36m-npz, "
                       "h36m-npz-cpn, h36m-expmap, h36m-expmap-noisy2d, humaneva, h36m-expmap17, toy"):
        get_dataset_info("nope")
    with pytest.raises(DataError, match="known datasets"):
        unregister_dataset("nope")
    report = check_data_dir("nope")
    assert not report.ok and "unknown dataset 'nope'" in report.errors[0]


def test_builtin_entries_carry_their_callables():
    assert list(DATASETS)[:4] == ["synthetic", "h36m", "cmu", "npz"]
    for entry in DATASETS.values():
        assert callable(entry.load) and callable(entry.check) and callable(entry.find_root)
    assert not DATASETS["synthetic"].needs_data_dir and DATASETS["h36m"].archive_patterns
    report = check_data_dir("synthetic")
    assert report.ok and str(report.root) == "<embedded>" and report.splits["val"] == "available (generated)"
