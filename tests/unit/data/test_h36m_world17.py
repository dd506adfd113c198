"""The ``h36m-expmap17`` forecasting set (50 Hz, DLow's 17 joints, root-relative) on synthetic exp-map files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.data.datasets import DATASETS, check_data_dir, load_motion
from crisscross.data.errors import DataError
from crisscross.data.h36m_world import world_file
from crisscross.data.h36m_world17 import (
    H36M_EXPMAP17_NAME,
    H36M_WORLD17_SPLITS,
    load_h36m_world17,
    world17_positions,
)
from crisscross.data.motion import SequenceKey
from crisscross.data.skeleton import H36M_17_FROM_32, H36M_17_SKELETON, H36M_SKELETON

# Lengths chosen around DLow's bound: 150 frames give range(0, 25, 25) = 1 window, 175 give 2, 176 give 3.
LENGTHS = {("S1", "walking", 1): 150, ("S6", "walking", 1): 130, ("S7", "eating", 2): 140, ("S8", "walking", 2): 135,
           ("S9", "walking", 1): 175, ("S9", "eating", 1): 176, ("S11", "walking", 2): 150, ("S11", "eating", 1): 125}


def _write(root: Path, subject: str, action: str, take: int, frames: int, seed: int) -> None:
    """A plausible exp-map file: row 0 zero, small per-frame root steps and turns, small joint angles."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.2, size=(frames, H36M_SKELETON.num_angle_values))
    values[:, 0:3] = rng.normal(0.0, 5.0, size=(frames, 3))
    values[:, 3:6] = rng.normal(0.0, 0.01, size=(frames, 3))
    values[0, :6] = 0.0
    path = root / subject / f"{action}_{take}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(f"{v:.7f}" for v in row) for row in values) + "\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``h3.6m/dataset`` with S1 S6 S7 S8 S9 S11 (no S5, as the shared archive)."""
    base = tmp_path_factory.mktemp("h36m17")
    for seed, ((subject, action, take), frames) in enumerate(LENGTHS.items()):
        _write(base / "h3.6m" / "dataset", subject, action, take, frames, seed)
    return base


def test_world17_positions_select_the_17_joints_and_subtract_the_root_in_every_frame():
    frames = np.arange(4, dtype=np.float32)[:, None, None] * np.array([10.0, -20.0, 30.0], np.float32)
    world = frames + np.arange(32, dtype=np.float32)[None, :, None] * np.array([1.0, 2.0, 3.0], np.float32)
    world[:, 0] += 500.0  # the root moves away from its rigid place: everything follows it
    out = world17_positions(world)
    assert out.shape == (4, 17, 3) and out.dtype == np.float32
    assert np.array_equal(out[:, 0], np.zeros((4, 3)))
    for k, j in enumerate(H36M_17_FROM_32):
        assert np.allclose(out[:, k], world[:, j] - world[:, 0])
    with pytest.raises(ValueError, match="32"):
        world17_positions(np.zeros((4, 17, 3)))


def test_a_split_is_one_50_hz_sequence_per_file_root_relative_in_millimetres(folder, tmp_path):
    motion = load_h36m_world17("test", folder)
    assert (motion.dataset, motion.split, motion.fps, motion.skeleton) == (H36M_EXPMAP17_NAME, "test", 50.0,
                                                                           H36M_17_SKELETON)
    assert motion.keys == [SequenceKey("S9", "walking", 1), SequenceKey("S9", "eating", 1),
                           SequenceKey("S11", "walking", 2), SequenceKey("S11", "eating", 1)]
    assert motion.seq_lengths.tolist() == [LENGTHS[(k.subject, k.action, k.subaction)] for k in motion.keys]
    assert motion.actions() == ["walking", "eating"]  # H3.6M's canonical order
    assert torch.equal(motion.positions[:, 0], torch.zeros(motion.num_frames, 3))
    # The world motion of the file, its 17 joints, root subtracted: orientation kept (not rotation-normalised).
    path = folder / "h3.6m" / "dataset" / "S9" / "walking_1.txt"
    world = world_file(path)
    expected = world[:, list(H36M_17_FROM_32)] - world[:, :1]
    assert np.allclose(motion.sequence(0).numpy(), expected, atol=1e-3)
    # Millimetres: the right thigh (hip -> knee) is the skeleton's bone, 442.9 mm, in every frame.
    thigh = torch.linalg.norm(motion.sequence(0)[:, 2] - motion.sequence(0)[:, 1], dim=-1)
    assert torch.allclose(thigh, torch.full_like(thigh, float(np.linalg.norm(H36M_SKELETON.offsets_mm[2]))),
                          atol=0.05)
    # Through the registry, with a cache: the same positions.
    cached = load_motion(H36M_EXPMAP17_NAME, "test", data_dir=folder, cache_dir=tmp_path)
    assert torch.allclose(cached.positions, motion.positions)
    assert torch.allclose(load_motion(H36M_EXPMAP17_NAME, "test", data_dir=folder, cache_dir=tmp_path).positions,
                          motion.positions)


def test_splits_are_dlow_subjects_with_s5_optional_and_s11_as_validation(folder):
    assert H36M_WORLD17_SPLITS == {"train": ("S1", "S5", "S6", "S7", "S8"), "val": ("S11",), "test": ("S9", "S11")}
    subjects = {split: sorted({k.subject for k in load_h36m_world17(split, folder).keys}) for split in
                H36M_WORLD17_SPLITS}
    assert subjects == {"train": ["S1", "S6", "S7", "S8"], "val": ["S11"], "test": ["S11", "S9"]}
    assert [str(k) for k in load_h36m_world17("val", folder, actions=["eating"]).keys] == ["S11/eating_1"]
    with pytest.raises(DataError, match="split 'bad'"):
        load_h36m_world17("bad", folder)
    with pytest.raises(DataError, match="unknown H3.6M action"):
        load_h36m_world17("test", folder, actions=["flying"])


def test_a_missing_required_subject_is_an_error(tmp_path):
    _write(tmp_path, "S9", "walking", 1, 30, 0)
    with pytest.raises(DataError, match="S11: missing subject folder.*'test' split"):
        load_h36m_world17("test", tmp_path)
    with pytest.raises(DataError, match="S1: missing subject folder"):
        load_h36m_world17("train", tmp_path)


def test_registry_entry_and_folder_check(folder, tmp_path):
    entry = DATASETS[H36M_EXPMAP17_NAME]
    assert (entry.task, entry.fps, entry.skeleton, entry.splits) == ("forecasting", 50.0, "h36m17",
                                                                     ("train", "val", "test"))
    assert entry.needs_data_dir and entry.has_layout(folder)
    report = check_data_dir(H36M_EXPMAP17_NAME, folder, cache_dir=tmp_path)
    assert report.ok, report.summary()
    assert len(report.present) == len(LENGTHS) and "S5/ (subject folder)" in report.absent
    assert report.splits["train"] == "available: S1, S6, S7, S8, 4 files (absent: S5)"
    assert report.splits["test"] == "available: S9, S11, 4 files"
