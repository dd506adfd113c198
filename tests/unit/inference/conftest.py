"""Shared fixtures: embedded motion in the body frame and placed in a world frame."""

from __future__ import annotations

import numpy as np
import pytest
from inference_fixtures import Y_UP_TO_Z_UP, turn

from crisscross.data.datasets import load_motion


@pytest.fixture(scope="session")
def body_mm() -> np.ndarray:
    """Array[100, 32, 3]: embedded walking-like motion at 25 fps in the literature's body frame, mm."""
    return load_motion("synthetic", "test").sequence(0).numpy().astype(np.float64)[:100]


@pytest.fixture(scope="session")
def world_mm(body_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(world [T, 32, 3], rotation [3, 3], path [T, 3])``: the motion turned 40 degrees in a z-up world, walking."""
    frames = body_mm.shape[0]
    rotation = turn(40.0) @ Y_UP_TO_Z_UP
    path = np.stack([np.linspace(0, 3000, frames), np.linspace(0, 1000, frames), np.full(frames, 900.0)], axis=1)
    return body_mm @ rotation.T + path[:, None], rotation, path
