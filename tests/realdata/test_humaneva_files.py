"""Checks on the real HumanEva-I files in the VideoPose3D npz format (skipped when they are absent).

The folder ``humaneva/`` is looked up in ``$CRISSCROSS_DATA`` or in ``../shared/datasets`` beside the repository
root; it holds ``data_3d_humaneva15.npz`` and ``data_2d_humaneva15_gt.npz`` (written by VideoPose3D
``prepare_data_humaneva.py``). Both are read through the safe reader of :mod:`crisscross.data.videopose3d`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from crisscross.data.videopose3d import frame_counts, read_positions_2d, read_positions_3d

pytestmark = pytest.mark.realdata

REPO_ROOT = Path(__file__).resolve().parents[2]
FILE_3D = "data_3d_humaneva15.npz"
FILE_2D = "data_2d_humaneva15_gt.npz"
SUBJECTS = {f"{split}/S{k}" for split in ("Train", "Validate") for k in (1, 2, 3)}


def _humaneva_dir() -> Path | None:
    env = os.environ.get("CRISSCROSS_DATA")
    base = Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"
    folder = base / "humaneva"
    return folder if (folder / FILE_3D).is_file() and (folder / FILE_2D).is_file() else None


@pytest.fixture(scope="module")
def humaneva():
    """``(positions_3d, positions_2d, metadata)`` read from the real files."""
    folder = _humaneva_dir()
    if folder is None:
        pytest.skip(f"real HumanEva-I files not found (humaneva/{FILE_3D} and humaneva/{FILE_2D} under "
                    "CRISSCROSS_DATA or ../shared/datasets)")
    positions_3d = read_positions_3d(folder / FILE_3D, joints=15)
    positions_2d, metadata = read_positions_2d(folder / FILE_2D, joints=15, cameras=3)
    return positions_3d, positions_2d, metadata


def test_both_files_load_with_15_joints_and_3_cameras(humaneva):
    positions_3d, positions_2d, metadata = humaneva
    assert metadata["layout_name"] == "humaneva15"
    assert metadata["num_joints"] == 15
    assert metadata["keypoints_symmetry"] == [[2, 3, 4, 8, 9, 10], [5, 6, 7, 11, 12, 13]]
    assert set(positions_3d) == set(positions_2d) == SUBJECTS
    for subject, actions in positions_3d.items():
        assert set(actions) == set(positions_2d[subject]), subject
        for action, poses in actions.items():
            assert poses.shape[1:] == (15, 3)
            extent = np.linalg.norm(poses.max(axis=1) - poses.min(axis=1), axis=-1)
            assert 1.0 < extent.min() and extent.max() < 2.5  # a body's bounding box in metres, not millimetres
            views = positions_2d[subject][action]
            assert len(views) == 3
            for view in views:  # pixels of a 640 x 480 image
                assert view.min() >= 0.0 and view[..., 0].max() < 640.0 and view[..., 1].max() < 480.0


def test_every_2d_sequence_has_the_length_of_its_3d_one(humaneva):
    positions_3d, positions_2d, _ = humaneva
    mismatched = [
        (subject, action, camera, len(view), len(poses))
        for subject, actions in positions_3d.items()
        for action, poses in actions.items()
        for camera, view in enumerate(positions_2d[subject][action])
        if len(view) != len(poses)
    ]
    assert not mismatched


def _counts_by_action(positions_3d) -> dict[str, dict[str, int]]:
    """Frames per subject and action ("<Action> <take> chunk<k>" summed over takes and chunks)."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for subject, actions in frame_counts(positions_3d).items():
        for name, count in actions.items():
            table[subject][name.split()[0]] += count
    return table


def test_print_frame_counts(humaneva):
    table = _counts_by_action(humaneva[0])
    actions = sorted({action for row in table.values() for action in row})
    header = ["subject", *actions, "total"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for subject in sorted(table, key=lambda s: (not s.startswith("Train"), s)):
        row = table[subject]
        lines.append(f"| {subject} | " + " | ".join(str(row.get(a, 0)) for a in actions) + f" | {sum(row.values())} |")
    totals = [sum(row.get(a, 0) for row in table.values()) for a in actions]
    lines.append("| all | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    print("\nHumanEva-I frames (60 Hz) per subject and action, summed over takes and chunks:")
    print("\n".join(lines))
    assert sum(totals) == sum(len(p) for actions in humaneva[0].values() for p in actions.values())
