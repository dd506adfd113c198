"""``crisscross predict``: one command from a recording or a detector file to a self-describing output."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from crisscross.cli.main import main
from crisscross.data.datasets import load_motion
from crisscross.data.skeleton import H36M_SKELETON

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"
FORECASTER = PRETRAINED / "h36m-stcformer-seed0.pt"
SAMPLER = PRETRAINED / "h36m-stcformer-cvae-ft-seed0.pt"
LIFTER = PRETRAINED / "humaneva-videopose3d-small-seed0.pt"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from test_lift import write_mediapipe, write_mmpose  # noqa: E402  (the detector files of the lifting tests)


@pytest.fixture
def recording_60fps_mm(tmp_path: Path) -> Path:
    """A 60 fps recording in millimetres, z up, walking: the embedded motion placed in a world and resampled."""
    body = load_motion("synthetic", "test").sequence(1).numpy().astype(np.float64)[:50]
    world = body[:, :, [0, 2, 1]] * np.array([1.0, -1.0, 1.0]) + np.array([0.0, 0.0, 950.0])
    world[..., 0] += np.arange(50)[:, None] * 40.0
    times = np.arange(0, 49 / 25 + 1e-9, 1 / 60)
    at60 = np.stack([np.interp(times, np.arange(50) / 25, world[:, j, c]) for j in range(32) for c in range(3)], 1)
    path = tmp_path / "walk.npz"
    np.savez(path, positions=at60.reshape(-1, 32, 3), fps=60.0, units="mm", joints=np.array(H36M_SKELETON.joint_names))
    return path


def test_a_60_fps_recording_forecasts_with_one_command(recording_60fps_mm: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "forecast.npz"
    assert main(["predict", str(FORECASTER), str(recording_60fps_mm), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 forecast of 25 frames x 32 joints (h36m), mm (declared), 25 fps" in printed
    with np.load(out, allow_pickle=False) as stored:
        assert stored["forecasts"].shape == (1, 25, 32, 3)
        assert stored["joints"].tolist() == list(H36M_SKELETON.joint_names)
        assert str(stored["units"]) == "mm" and float(stored["fps"]) == 25.0 and float(stored["input_fps"]) == 60.0
        assert float(stored["origin_times_s"][0]) == pytest.approx(117 / 60)  # the recording's last frame, 118th
        meta = json.loads(str(stored["meta_json"]))
    assert meta["model"] == "stcformer" and meta["root_motion"] == "extrapolate"
    # the forecast continues from where the recording stops (first forecast frame within 5 cm of the last pose)
    with np.load(recording_60fps_mm) as rec:
        last = rec["positions"][-1]
    with np.load(out) as stored:
        assert np.linalg.norm(stored["forecasts"][0, 0] - last, axis=-1).mean() < 50.0


def test_forecasts_every_kth_frame_to_json(recording_60fps_mm: Path, tmp_path: Path) -> None:
    out = tmp_path / "forecasts.json"
    assert main(["predict", str(FORECASTER), str(recording_60fps_mm), "-o", str(out), "--every", "10",
                 "--root-motion", "hold", "--up", "z"]) == 0
    body = json.loads(out.read_text())
    assert np.asarray(body["forecasts"]).shape == (4, 25, 32, 3) and body["units"] == "mm"


def test_an_mmpose_file_lifts_with_one_command(tmp_path: Path, capsys) -> None:
    source = write_mmpose(tmp_path / "results_video.json", 30)
    out = tmp_path / "poses.npz"
    assert main(["predict", str(LIFTER), str(source), "-o", str(out), "--image-size", "1280", "720",
                 "--fps", "30", "--smooth", "one-euro"]) == 0
    assert "30 poses of 15 joints (humaneva15), metres, root-relative, camera frame, 30 fps" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as stored:
        assert stored["poses"].shape == (30, 15, 3) and str(stored["units"]) == "m" and float(stored["fps"]) == 30.0
        assert stored["joints"].tolist()[0] == "Pelvis" and stored["keypoints_px"].shape == (30, 15, 2)
        assert str(stored["joint_map"]) == "coco17->humaneva15" and str(stored["smoothing"]) == "one-euro"


def test_a_mediapipe_file_lifts_with_one_command(tmp_path: Path) -> None:
    source = write_mediapipe(tmp_path / "landmarks.json", 20)
    out = tmp_path / "poses.json"
    assert main(["predict", str(LIFTER), str(source), "-o", str(out)]) == 0
    body = json.loads(out.read_text())
    assert np.asarray(body["poses"]).shape == (20, 15, 3) and body["fps"] == 30.0
    assert body["joint_map"] == "mediapipe33->humaneva15" and body["units"] == "m"


@pytest.mark.integration
def test_animations_of_both_tasks(recording_60fps_mm: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert main(["predict", str(FORECASTER), str(recording_60fps_mm), "-o", str(tmp_path / "f.npz"),
                 "--animate", str(tmp_path / "f.gif")]) == 0
    source = write_mmpose(tmp_path / "results.json", 12)
    assert main(["predict", str(LIFTER), str(source), "-o", str(tmp_path / "l.npz"), "--image-size", "1280", "720",
                 "--animate", str(tmp_path / "l.gif")]) == 0
    assert (tmp_path / "f.gif").stat().st_size > 10_000 and (tmp_path / "l.gif").stat().st_size > 10_000


def test_bad_input_is_one_line_and_exit_code_2(recording_60fps_mm: Path, tmp_path: Path, capsys) -> None:
    cases = [
        ([str(FORECASTER), str(write_mmpose(tmp_path / "kp.json", 5)), "-o", str(tmp_path / "a.npz")],
         "need a lifting checkpoint"),
        ([str(LIFTER), str(recording_60fps_mm), "-o", str(tmp_path / "b.npz")], "it takes 2D keypoints"),
        ([str(LIFTER), str(write_mmpose(tmp_path / "kp2.json", 5)), "-o", str(tmp_path / "c.npz")],
         "image size is unknown"),
        ([str(FORECASTER), str(recording_60fps_mm), "-o", str(tmp_path / "d.csv")], "must be a .npz or .json"),
        ([str(tmp_path / "missing.pt"), str(recording_60fps_mm), "-o", str(tmp_path / "e.npz")], "missing.pt"),
        ([str(FORECASTER), str(recording_60fps_mm), "-o", str(tmp_path / "f.npz"), "--image-size", "640", "480"],
         "--image-size: not an option of forecasting"),
        ([str(LIFTER), str(write_mmpose(tmp_path / "kp3.json", 5)), "-o", str(tmp_path / "g.npz"), "--every", "2"],
         "--every: not an option of lifting"),
        ([str(FORECASTER), str(recording_60fps_mm), "-o", str(tmp_path / "h.npz"), "--animate", "x.png"],
         "must be a .gif or .mp4"),
        ([str(FORECASTER), str(recording_60fps_mm), "-o", str(tmp_path / "i.npz"), "--samples", "5"],
         "stcformer is deterministic: sampled futures need a model that samples"),
        ([str(SAMPLER), str(recording_60fps_mm), "-o", str(tmp_path / "j.npz"), "--seed", "2"],
         "--seed seeds the draws of --samples"),
        ([str(LIFTER), str(write_mmpose(tmp_path / "kp4.json", 5)), "-o", str(tmp_path / "k.npz"), "--samples", "2"],
         "--samples: not an option of lifting"),
    ]
    for argv, message in cases:
        assert main(["predict", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    out = tmp_path / "taken.npz"
    out.write_bytes(b"keep")
    assert main(["predict", str(FORECASTER), str(recording_60fps_mm), "-o", str(out)]) == 2
    assert "never overwritten" in capsys.readouterr().err and out.read_bytes() == b"keep"


def test_k_sampled_futures_with_one_command_and_their_animation(recording_60fps_mm: Path, tmp_path: Path,
                                                                capsys) -> None:
    out = tmp_path / "futures.npz"
    argv = ["predict", str(SAMPLER), str(recording_60fps_mm), "-o", str(out), "--samples", "6", "--seed", "1"]
    if importlib.util.find_spec("matplotlib") is not None:
        argv += ["--animate", str(tmp_path / "futures.gif")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 forecast x 6 sampled futures (seed 1) of 25 frames x 32 joints (h36m), mm" in printed
    with np.load(out, allow_pickle=False) as stored:
        futures = stored["forecasts"]
        meta = json.loads(str(stored["meta_json"]))
    assert futures.shape == (1, 6, 25, 32, 3) and meta["samples"] == 6 and meta["seed"] == 1
    assert meta["model"] == "stcformer-cvae" and meta["forecast_axes"] == "origin, sample, frame, joint, xyz"
    with np.load(recording_60fps_mm) as rec:
        last = rec["positions"][-1]
    # every future starts from where the recording stops, and they part ways by the last frame
    assert (np.linalg.norm(futures[0, :, 0] - last, axis=-1).mean(axis=-1) < 50.0).all()
    assert np.linalg.norm(futures[0, :, -1] - futures[0, :, -1].mean(axis=0), axis=-1).mean() > 5.0
    if "--animate" in argv:
        assert "6 futures" in printed and (tmp_path / "futures.gif").stat().st_size > 10_000
