"""User recordings, the dataset table, data-folder discovery (archives) and checking."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from crisscross.data.datasets import DATASETS, check_data_dir, find_data_dir, load_motion
from crisscross.data.errors import DataError
from crisscross.data.user import load_user_motion, resample_positions

NAMES = ["Hips", "LeftHip", "LeftKnee", "RightHip", "RightKnee", "Neck"]
PARENTS = [-1, 0, 1, 0, 3, 0]


def _recording(frames: int = 100) -> np.ndarray:
    t = np.arange(frames)[:, None]
    base = np.array([[0, 900, 0], [100, 900, 0], [100, 450, 0], [-100, 900, 0], [-100, 450, 0], [0, 1500, 0]], float)
    positions = np.repeat(base[None], frames, axis=0)
    positions[:, :, 2] += 5.0 * t  # the whole body walks forward 5 mm per frame
    positions[:, 2, 2] += 50 * np.sin(t[:, 0] / 5)
    return positions


def test_npz_with_embedded_description(tmp_path: Path):
    np.savez(tmp_path / "walk.npz", positions=_recording(100) / 1000, parents=PARENTS, joint_names=NAMES, fps=50.0,
             units="m")
    motion = load_user_motion(tmp_path / "walk.npz")
    assert motion.fps == 25 and motion.num_frames == 50  # every 2nd frame of 50 Hz
    assert float(np.abs(motion.positions[:, 0].numpy()).max()) == 0.0  # root-centred
    assert float(motion.positions[0, 5, 1]) == pytest.approx(600.0)  # metres -> mm, relative to the root
    skeleton = motion.skeleton
    assert skeleton.predicted == (1, 2, 3, 4, 5) and set(skeleton.mirror_pairs) == {(1, 3), (2, 4)}
    assert skeleton.predicted_parents() == (-1, 0, -1, 2, -1)


def test_npy_with_sidecar_and_split_folders(tmp_path: Path):
    for split in ("train", "val", "test"):
        folder = tmp_path / split
        folder.mkdir()
        np.save(folder / f"{split}_take.npy", _recording(60))
        (folder / f"{split}_take.yaml").write_text(yaml.safe_dump({"joint_names": NAMES, "parents": PARENTS,
                                                                      "fps": 30, "action": "walk"}))
    motion = load_motion("npz", "val", data_dir=tmp_path)
    assert motion.actions() == ["walk"] and motion.num_frames == len(resample_positions(_recording(60), 30))
    assert load_motion("npz", "all", data_dir=tmp_path).num_sequences == 3


def test_temporal_split_without_folders(tmp_path: Path):
    np.save(tmp_path / "take.npy", _recording(100))
    (tmp_path / "skeleton.json").write_text(json.dumps({"joint_names": NAMES, "parents": PARENTS, "fps": 25}))
    sizes = {s: load_user_motion(tmp_path, s).num_frames for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 80, "val": 10, "test": 10, "all": 100}


def test_resample_interpolates_non_integer_ratios():
    positions = np.arange(31, dtype=float)[:, None, None] * np.ones((1, 2, 3))  # 1 unit per frame at 30 fps
    out = resample_positions(positions, 30.0, 25.0)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(26) * 30 / 25)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"positions": np.zeros((10, 6))}, r"shape \[frames >= 2, joints, 3\]"),
        ({"positions": np.zeros((10, 6, 3)), "fps": 25.0}, "missing parents"),
        ({"positions": np.zeros((10, 6, 3)), "parents": PARENTS[:5], "fps": 25.0}, "6 joints in positions but 5"),
        ({"positions": np.zeros((10, 6, 3)), "parents": [-1, 2, 0, 0, 3, 0], "fps": 25.0}, "earlier joint"),
        ({"positions": np.full((10, 6, 3), np.nan), "parents": PARENTS, "fps": 25.0}, "frame 0, joint 0"),
        ({"positions": np.zeros((10, 6, 3)), "parents": PARENTS, "fps": -1.0}, "fps must be positive"),
    ],
)
def test_user_validation_errors(tmp_path: Path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_user_motion(tmp_path / "bad.npz")


def test_dataset_table_and_load_errors():
    assert set(DATASETS) == {"synthetic", "h36m", "cmu", "npz", "h36m-npz", "h36m-npz-cpn", "h36m-expmap",
                             "h36m-expmap-noisy2d", "humaneva", "h36m-expmap17"}
    assert DATASETS["h36m"].splits == ("train", "val", "test") and DATASETS["h36m"].needs_data_dir
    with pytest.raises(DataError, match="known datasets"):
        load_motion("nope")
    with pytest.raises(DataError, match="splits: train, val, test"):
        load_motion("synthetic", "bogus")


def test_find_data_dir_reads_env_at_call_time(h36m_dir: Path, monkeypatch):
    monkeypatch.delenv("CRISSCROSS_DATA", raising=False)
    with pytest.raises(DataError, match="CRISSCROSS_DATA"):
        find_data_dir("h36m")
    monkeypatch.setenv("CRISSCROSS_DATA", str(h36m_dir))
    assert find_data_dir("h36m") == h36m_dir


def test_archive_folder_is_unpacked_once_into_the_cache(h36m_dir: Path, tmp_path: Path):
    archives = tmp_path / "archives"
    archives.mkdir()
    archive = archives / "h36m-expmap-test.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(h36m_dir / "h3.6m", arcname="h3.6m")
    cache = tmp_path / "cache"
    found = find_data_dir("h36m", archives, cache_dir=cache)
    assert found == cache / "datasets" / "h36m-expmap-test" and (found / "h3.6m" / "dataset" / "S1").is_dir()
    stamp = (found / ".crisscross-unpacked").stat().st_mtime_ns
    assert find_data_dir("h36m", archives, cache_dir=cache) == found
    assert (found / ".crisscross-unpacked").stat().st_mtime_ns == stamp  # not unpacked again
    motion = load_motion("h36m", "val", data_dir=archives, cache_dir=cache, actions=["walking"])
    assert motion.num_sequences == 2


def test_check_data_dir_reports_present_absent_and_malformed(h36m_dir: Path, tmp_path: Path):
    report = check_data_dir("h36m", h36m_dir, cache_dir=tmp_path / "cache")
    assert report.ok
    assert "S11/eating_1.txt" in report.absent and "S5/ (subject folder)" in report.absent
    assert report.splits["test"].startswith("unavailable") and len(report.present) == 7
    bad = h36m_dir / "h3.6m" / "dataset" / "S1" / "walking_2.txt"
    bad.write_text(bad.read_text() + "1,2,3\n")
    report = check_data_dir("h36m", h36m_dir, cache_dir=tmp_path / "cache")
    assert not report.ok and "walking_2.txt:" in report.malformed[0] and "truncated line" in report.malformed[0]
    text = report.summary()
    assert "malformed: 1" in text and "FIX" in text
    missing = check_data_dir("cmu", tmp_path / "nowhere")
    assert not missing.ok and "no such file or folder" in missing.summary()


def test_check_cmu(cmu_dir: Path, tmp_path: Path):
    report = check_data_dir("cmu", cmu_dir, cache_dir=tmp_path / "cache")
    assert report.ok and len(report.present) == 4
    assert "train/washwindow/ (no washwindow_<n>.txt)" in report.absent and "test/ (folder)" in report.absent
