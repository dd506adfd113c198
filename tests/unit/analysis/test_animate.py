"""Skeleton animation: one GIF frame per window frame, the expected size, not blank; clear fallbacks and errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageSequence

import crisscross.analysis.animate as animate_module
from crisscross.analysis.animate import animate_forecast
from crisscross.analysis.errors import load_windows


@pytest.fixture(scope="module")
def window():
    w = load_windows("synthetic", "val", 10, 25, [2])
    truth = w.windows_mm[0]
    pred = truth.clone()
    pred[10:] += 30.0  # a visibly different "prediction"
    return w.skeleton, truth, pred


def test_gif_has_one_frame_per_window_frame(tmp_path, window) -> None:
    skeleton, truth, pred = window
    start = time.perf_counter()
    result = animate_forecast(truth, pred, skeleton.parents, 10, tmp_path / "clip.gif", title="test")
    elapsed = time.perf_counter() - start
    assert result.writer == "pillow" and result.frames == 35 and result.fallback is None
    with Image.open(result.path) as gif:
        assert gif.n_frames == 35
        assert gif.size == (640, 336)  # figsize (8, 4.2) inches at 80 dpi
        frames = [np.asarray(f.convert("RGB"), dtype=np.float32) for f in ImageSequence.Iterator(gif)]
    assert all(f.std() > 5 for f in frames)  # skeletons and axes drawn, not blank
    assert np.abs(frames[0] - frames[-1]).mean() > 0.1  # the pose moves
    assert elapsed < 30  # artists are reused; a few seconds on an idle CPU


def test_missing_writer_falls_back_to_png_frames(tmp_path, window, monkeypatch) -> None:
    skeleton, truth, pred = window
    monkeypatch.setattr(animate_module, "available_writers", lambda: {"pillow": False, "ffmpeg": False})
    result = animate_forecast(truth[:12], pred[:12], skeleton.parents, 10, tmp_path / "clip.mp4")
    assert result.writer == "png-frames" and "ffmpeg is not available" in result.fallback
    assert len(list(result.path.glob("frame_*.png"))) == 12


def test_bad_inputs_are_clear_errors(tmp_path, window) -> None:
    skeleton, truth, pred = window
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        animate_forecast(truth, pred, skeleton.parents, 10, tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="must both be"):
        animate_forecast(truth, pred[:-1], skeleton.parents, 10, tmp_path / "clip.gif")
    with pytest.raises(ValueError, match="parents"):
        animate_forecast(truth, pred, skeleton.parents[:-1], 10, tmp_path / "clip.gif")
