"""Forecasting one's own recordings: layouts, units, frame rates, the body frame and the root's path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from inference_fixtures import FORECASTER

from crisscross.data.errors import DataError
from crisscross.data.skeleton import H36M_17_FROM_32, H36M_17_SKELETON, H36M_SKELETON, skeleton_to_dict
from crisscross.data.user import UserRecording, skeleton_from_description
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.inference.forecast import ForecastPredictor, detect_units, resample_to_end
from crisscross.inference.motion_files import Motion3D
from crisscross.inference.predictor import Predictor
from crisscross.models.registry import build_model
from crisscross.tasks.forecasting.sampling import make_sample_fn


@pytest.fixture(scope="module")
def predictor() -> ForecastPredictor:
    return Predictor.from_checkpoint(FORECASTER)


def _direct(predictor: ForecastPredictor, window_mm: np.ndarray) -> np.ndarray:
    """The evaluation path's forecast of one body-frame window (Array[T_in, 32, 3] mm)."""
    predict = make_predict_fn(predictor.model, predictor.skeleton, predictor.output_frames)
    return predict(torch.as_tensor(window_mm[None], dtype=torch.float32))[0].double().numpy()


def test_the_factory_builds_the_task_of_the_checkpoint(predictor: ForecastPredictor) -> None:
    assert predictor.task == "forecasting" and predictor.model_name == "stcformer"
    assert (predictor.input_frames, predictor.output_frames, predictor.fps) == (10, 25, 25.0)
    assert list(predictor.layouts) == ["h36m", "h36m-predicted"]
    assert len(predictor.layouts["h36m-predicted"]) == 22


def test_a_body_frame_recording_gives_the_evaluation_forecast(predictor, body_mm) -> None:
    out = predictor(body_mm[:40], fps=25, units="mm", root_motion="hold")
    assert out.positions.shape == (1, 25, 32, 3) and out.units == "mm" and out.fps == 25.0
    assert out.origin_frames.tolist() == [39.0]
    np.testing.assert_allclose(out.positions[0], _direct(predictor, body_mm[30:40]), atol=1e-3)


def test_forecasts_turn_and_move_with_the_world_frame(predictor, body_mm, world_mm) -> None:
    world, rotation, path = world_mm
    held = predictor(world[:40], fps=25, units="mm", root_motion="hold")
    expected = _direct(predictor, body_mm[30:40]) @ rotation.T + path[39]
    np.testing.assert_allclose(held.positions[0], expected, atol=1e-3)
    assert "world frame" in held.meta["frame"]


def test_extrapolation_keeps_the_roots_velocity(predictor, body_mm, world_mm) -> None:
    world, _, path = world_mm
    moving = predictor(world[:40], fps=25, units="mm", root_motion="extrapolate").positions[0]
    held = predictor(world[:40], fps=25, units="mm", root_motion="hold").positions[0]
    step = path[1] - path[0]  # the path is a straight line at a constant speed
    shift = moving - held
    np.testing.assert_allclose(shift, np.broadcast_to(np.arange(1, 26)[:, None, None] * step, shift.shape), atol=1e-3)


def test_units_are_declared_or_detected_and_do_not_change_the_forecast(predictor, world_mm) -> None:
    world = world_mm[0][:40]
    mm = predictor(world, fps=25)
    metres = predictor(world / 1000, fps=25)
    cm = predictor(world / 10, fps=25, units="cm")
    assert (mm.units, metres.units, cm.units) == ("mm", "m", "cm")
    assert mm.meta["units_rule"].startswith("detected") and cm.meta["units_rule"] == "declared"
    np.testing.assert_allclose(metres.positions * 1000, mm.positions, atol=1e-3)
    np.testing.assert_allclose(cm.positions * 10, mm.positions, atol=1e-3)
    assert detect_units(world)[0] == "mm" and detect_units(world / 1000)[0] == "m"
    with pytest.raises(DataError, match="declare them"):
        detect_units(np.zeros((3, 32, 3)))


def test_resampling_ends_on_the_last_frame() -> None:
    x = np.arange(13, dtype=np.float64)[:, None]  # 13 frames at 60 fps: 0.2 s
    out, source = resample_to_end(x, 60.0, 25.0)
    assert source[-1] == 12.0 and np.allclose(np.diff(source), 2.4)
    np.testing.assert_allclose(out[:, 0], source)  # linear data is reproduced exactly
    same, index = resample_to_end(x, 25.0, 25.0)
    assert same is x and index.tolist() == list(range(13))


def test_a_60_fps_recording_in_metres_forecasts_at_the_models_rate(predictor, world_mm) -> None:
    world = world_mm[0]
    times = np.arange(0, (world.shape[0] - 1) / 25 + 1e-9, 1 / 60)
    world60 = np.stack([np.interp(times, np.arange(world.shape[0]) / 25, world[:, j, c])
                        for j in range(32) for c in range(3)], axis=1).reshape(len(times), 32, 3)
    out = predictor(world60 / 1000, fps=60.0)
    assert out.fps == 25.0 and out.units == "m" and out.meta["input_fps"] == 60.0
    assert out.origin_frames.tolist() == [len(times) - 1]
    at25 = predictor(world / 1000, fps=25.0)
    assert np.abs(out.positions - at25.positions).max() < 0.03  # 3 cm: interpolation of the observed frames


def test_every_kth_frame_forecasts_from_the_first_full_window(predictor, world_mm) -> None:
    out = predictor(world_mm[0][:40], fps=25, every=7)
    assert out.origin_frames.tolist() == [9.0, 16.0, 23.0, 30.0, 37.0]
    assert out.positions.shape == (5, 25, 32, 3)


def test_joints_are_matched_by_name_in_any_order_with_extras(predictor, world_mm) -> None:
    world = world_mm[0][:40]
    names = list(H36M_SKELETON.joint_names)
    order = np.random.default_rng(0).permutation(32)
    shuffled = np.concatenate([world[:, order], world[:, :1] + 1.0], axis=1)
    by_name = predictor(Motion3D(None, shuffled, 25.0, "mm", tuple([names[j] for j in order] + ["Marker"])))
    np.testing.assert_allclose(by_name.positions, predictor(world, fps=25, units="mm").positions)
    assert by_name.joints == H36M_SKELETON.joint_names


def test_the_predicted_joints_layout_passes_through_in_the_body_frame(predictor, body_mm) -> None:
    predicted = list(H36M_SKELETON.predicted)
    out = predictor(body_mm[:40, predicted] / 1000, fps=25, units="m")
    assert out.meta["layout"] == "h36m-predicted" and out.positions.shape == (1, 25, 22, 3)
    np.testing.assert_allclose(out.positions[0] * 1000, _direct(predictor, body_mm[30:40])[:, predicted], atol=1e-3)


@pytest.mark.parametrize(("change", "message"), [
    (lambda x: x[:, list(H36M_17_FROM_32)], "lacks RightToeBase"),
    (lambda x: x[:, :5], "5 joints; this forecaster takes the 32 joints"),
    (lambda x: x[:8], "needs 10 frames at 25 fps"),
    (lambda x: np.where(np.arange(32)[None, :, None] == 4, np.nan, x), "non-finite position at frame 0, joint 4"),
    (lambda x: x[..., :2], r"shape \[frames, joints, 3\]"),
])
def test_bad_input_gets_one_line_naming_what_was_expected(predictor, world_mm, change, message) -> None:
    with pytest.raises(DataError, match=message) as err:
        predictor(change(world_mm[0][:40]), fps=25, units="mm")
    assert "\n" not in str(err.value)


def test_a_missing_frame_rate_or_bad_option_is_refused(predictor, world_mm) -> None:
    with pytest.raises(DataError, match="frame rate is unknown"):
        predictor(world_mm[0][:40])
    with pytest.raises(ValueError, match="root_motion"):
        predictor(world_mm[0][:40], fps=25, root_motion="fly")
    with pytest.raises(ValueError, match="every"):
        predictor(world_mm[0][:40], fps=25, every=0)
    names = (*H36M_SKELETON.joint_names[:2], "Elsewhere", *H36M_SKELETON.joint_names[3:])
    with pytest.raises(DataError, match="joints RightLeg missing"):
        predictor(Motion3D(None, world_mm[0][:40], 25.0, "mm", names))


def test_a_user_skeleton_forecaster_takes_its_17_joints_root_centred(world_mm) -> None:
    """A forecaster trained on one's own 17-joint recordings (the ``npz`` dataset) knows that layout; its training
    data was root-centred without removing the heading, so only the root is moved."""
    names = H36M_17_SKELETON.joint_names
    world = world_mm[0][:40, list(H36M_17_FROM_32)]
    recording = UserRecording(Path("walk.npz"), world, names, H36M_17_SKELETON.parents, 25.0, "mm", "walking")
    skeleton = skeleton_from_description("npz", recording)
    model = build_model("simlpe", {}, skeleton, 10, 25).eval()
    ckpt = {"model_name": "simlpe", "meta": {"skeleton": "npz", "skeleton_spec": skeleton_to_dict(skeleton),
                                             "input_frames": 10, "output_frames": 25, "fps": 25.0}}
    predictor = ForecastPredictor(model, ckpt)
    assert not predictor.pelvis_frame and list(predictor.layouts) == ["npz", "npz-predicted"]
    out = predictor(world, fps=25, units="mm", root_motion="hold")
    assert out.joints == names and out.positions.shape == (1, 25, 17, 3)
    centred = world - world[:, :1]
    expected = _direct(predictor, centred[30:40]) + world[39, 0]
    np.testing.assert_allclose(out.positions[0], expected, atol=1e-3)
    shifted = predictor(world + np.array([100.0, -50.0, 20.0]), fps=25, units="mm", root_motion="hold")
    np.testing.assert_allclose(shifted.positions, out.positions + np.array([100.0, -50.0, 20.0]), atol=1e-3)


@pytest.fixture(scope="module")
def sampler() -> ForecastPredictor:
    return Predictor.from_checkpoint(Path(FORECASTER).parent / "h36m-stcformer-cvae-ft-seed0.pt")


def test_a_sampling_forecaster_draws_k_futures_per_origin_reproducibly(sampler, body_mm, world_mm) -> None:
    world, rotation, path = world_mm
    drawn = sampler(world[:60], fps=25, units="mm", every=10, samples=4, seed=3, root_motion="hold")
    assert drawn.positions.shape == (6, 4, 25, 32, 3)
    assert drawn.meta["samples"] == 4 and drawn.meta["seed"] == 3 and "sample" in drawn.meta["forecast_axes"]
    again = sampler(world[:60], fps=25, units="mm", every=10, samples=4, seed=3, root_motion="hold")
    np.testing.assert_array_equal(drawn.positions, again.positions)
    other = sampler(world[:60], fps=25, units="mm", every=10, samples=4, seed=4, root_motion="hold")
    assert not np.allclose(drawn.positions, other.positions)
    spread = drawn.positions[:, :, -1].std(axis=1).mean()  # the futures differ at their last frame
    assert spread > 1.0
    # each future is the evaluation path's draw, turned and placed like a deterministic forecast
    sample, _ = make_sample_fn(sampler.model, sampler.skeleton, sampler.output_frames, seed=3)
    origins = np.arange(9, 60, 10)
    windows = torch.as_tensor(np.stack([body_mm[o - 9:o + 1] for o in origins]), dtype=torch.float32)
    body = sample(windows, 4).transpose(0, 1).double().numpy()  # [N, K, T, J, 3]
    expected = body @ rotation.T + path[origins][:, None, None, None]
    np.testing.assert_allclose(drawn.positions, expected, atol=1e-2)


def test_samples_need_a_sampling_forecaster(predictor, sampler, world_mm) -> None:
    with pytest.raises(ValueError, match="stcformer is deterministic: sampled futures need a model that samples"):
        predictor(world_mm[0][:40], fps=25, units="mm", samples=3)
    with pytest.raises(ValueError, match="samples must be a number of futures >= 1, got 0"):
        sampler(world_mm[0][:40], fps=25, units="mm", samples=0)
