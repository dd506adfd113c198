"""Skeleton animation: one GIF frame per window frame, the expected size, not blank; clear fallbacks and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import crisscross.analysis.animate as animate_module
from crisscross.analysis.animate import animate_forecast, animate_futures, closest_future
from crisscross.analysis.errors import load_windows
from crisscross.cli.main import main


@pytest.fixture(scope="module")
def window():
    w = load_windows("synthetic", "val", 10, 25, [2])
    truth = w.windows_mm[0]
    pred = truth.clone()
    pred[10:] += 30.0  # a visibly different "prediction"
    return w.skeleton, truth, pred


def test_gif_has_one_frame_per_window_frame(tmp_path, window) -> None:
    skeleton, truth, pred = window
    result = animate_forecast(truth, pred, skeleton.parents, 10, tmp_path / "clip.gif", title="test")
    assert result.writer == "pillow" and result.frames == 35 and result.fallback is None
    with Image.open(result.path) as gif:
        assert gif.n_frames == 35
        assert gif.size == (640, 336)  # figsize (8, 4.2) inches at 80 dpi
        frames = [np.asarray(f.convert("RGB"), dtype=np.float32) for f in ImageSequence.Iterator(gif)]
    assert all(f.std() > 5 for f in frames)  # skeletons and axes drawn, not blank
    assert np.abs(frames[0] - frames[-1]).mean() > 0.1  # the pose moves


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


def test_closest_future_is_the_one_best_of_k_ade_picks() -> None:
    truth = torch.zeros(4, 2, 3)  # 2 observed + 2 future frames of 2 joints
    futures = truth[None].repeat(3, 1, 1, 1)
    futures[0, 2:, :, 0] = 30.0  # 30 mm off in every future frame
    futures[1, 2:, :, 1] = 10.0  # 10 mm off
    futures[2, 2:, 0, 2] = 40.0  # one joint 40 mm off: mean 20 mm
    futures[:, :2] = 1000.0  # observed frames are not scored
    assert closest_future(truth, futures, 2) == (1, pytest.approx(10.0))


def test_futures_clip_overlays_every_sample(tmp_path, window) -> None:
    skeleton, truth, pred = window
    futures = torch.stack([truth, pred, pred + 60.0])
    result = animate_futures(truth, futures, skeleton.parents, 10, tmp_path / "futures.gif", title="K")
    assert result.writer == "pillow" and result.frames == 35
    with Image.open(result.path) as gif:
        assert gif.n_frames == 35
        last = np.asarray(ImageSequence.Iterator(gif)[34].convert("RGB"), dtype=np.float32)
    right = last[:, last.shape[1] // 2:]
    colours = {tuple(int(c) for c in px) for px in right.reshape(-1, 3)[::7]}
    assert len(colours) > 20  # several future colours, not one skeleton
    with pytest.raises(ValueError, match=r"\[K, T, J, 3\]"):
        animate_futures(truth, truth, skeleton.parents, 10, tmp_path / "bad.gif")


def test_animate_futures_cli(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["animate", "--model", "stcformer-cvae", "--futures", "4", "--sample", "1", "--seed", "3"]) == 0
    clip = tmp_path / "runs" / "animations" / "stcformer-cvae" / "sample1-futures4.gif"
    assert clip.exists() and "4 futures" in capsys.readouterr().out
    assert main(["animate", "--model", "stcformer", "--futures", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs a model that samples" in err and "\n" not in err
    assert main(["animate", "--model", "stcformer-cvae", "--futures", "0"]) == 2
