"""Paths of the committed checkpoints used by the inference tests, and world-frame helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"
FORECASTER = PRETRAINED / "h36m-stcformer-seed0.pt"
LIFTER = PRETRAINED / "humaneva-videopose3d-small-seed0.pt"
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def turn(degrees: float) -> np.ndarray:
    """Array[3, 3]: a rotation by ``degrees`` about +z."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
