"""Streaming: one frame at a time gives what the offline predictors give, with the latency stated."""

from __future__ import annotations

import numpy as np
import pytest
from inference_fixtures import FORECASTER, LIFTER

from crisscross.inference.predictor import Predictor
from crisscross.inference.streaming import StreamingForecaster, StreamingLifter

SIZE = (1000, 1000)


@pytest.fixture(scope="module")
def forecaster():
    return Predictor.from_checkpoint(FORECASTER)


@pytest.fixture(scope="module")
def lifter():
    return Predictor.from_checkpoint(LIFTER)


def _keypoints(frames: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    base = 500 + rng.normal(0, 120, (15, 2))
    return base + 30 * np.sin(np.arange(frames)[:, None, None] / 5 + rng.uniform(0, 6, (15, 1)))


@pytest.mark.parametrize("root_motion", ["extrapolate", "hold"])
def test_streamed_forecasts_equal_the_offline_ones(forecaster, world_mm, root_motion) -> None:
    world = world_mm[0][:30]
    stream = StreamingForecaster(forecaster, units="mm", root_motion=root_motion)
    outputs = [stream.push(frame) for frame in world]
    assert all(o is None for o in outputs[:9]) and all(o is not None for o in outputs[9:])
    offline = forecaster(world, fps=25, units="mm", every=1, root_motion=root_motion)
    np.testing.assert_allclose(np.stack(outputs[9:]), offline.positions, atol=1e-3)


def test_a_faster_stream_is_put_on_the_models_time_grid(forecaster, world_mm) -> None:
    world = world_mm[0][:30]
    doubled = np.empty((59, 32, 3))
    doubled[0::2], doubled[1::2] = world, (world[:-1] + world[1:]) / 2  # 50 fps, linear between the 25 fps frames
    stream = StreamingForecaster(forecaster, fps=50.0, units="mm")
    outputs = [stream.push(frame) for frame in doubled]
    produced = [t for t, o in enumerate(outputs) if o is not None]
    assert produced == list(range(18, 59, 2))  # a forecast each time a 25 fps frame completes
    direct = StreamingForecaster(forecaster, units="mm")
    expected = [o for o in (direct.push(f) for f in world) if o is not None]
    np.testing.assert_allclose(np.stack([outputs[t] for t in produced]), np.stack(expected), atol=1e-3)


def test_a_bad_frame_names_its_number(forecaster) -> None:
    stream = StreamingForecaster(forecaster)
    with pytest.raises(ValueError, match=r"frame 0: expected 32 finite joints x 3, got \[22, 3\]"):
        stream.push(np.zeros((22, 3)))
    with pytest.raises(ValueError, match="units"):
        StreamingForecaster(forecaster, units="inch")


def test_the_delayed_lifter_gives_the_offline_poses_half_a_window_late(lifter) -> None:
    keypoints = _keypoints(40)
    stream = StreamingLifter(lifter, SIZE, mode="delayed")
    assert stream.latency_frames == 13
    outputs = [stream.push(k) for k in keypoints]
    assert all(o is None for o in outputs[:13]) and [o[0] for o in outputs[13:]] == list(range(27))
    tail = stream.flush()
    assert [f for f, _ in tail] == list(range(27, 40))
    poses = np.stack([p for _, p in [o for o in outputs if o is not None] + tail])
    offline = lifter(keypoints, image_size=SIZE, fps=60)
    np.testing.assert_allclose(poses, offline.poses, atol=1e-5)


def test_the_causal_lifter_answers_at_once(lifter) -> None:
    keypoints = _keypoints(20)
    stream = StreamingLifter(lifter, SIZE, mode="causal")
    assert stream.latency_frames == 0 and stream.flush() == []
    outputs = [stream.push(k) for k in keypoints]
    assert [o[0] for o in outputs] == list(range(20))
    offline = lifter(keypoints, image_size=SIZE, fps=60)
    # at the newest frame the window's future is the newest frame repeated, as offline at a video's end
    np.testing.assert_allclose(outputs[-1][1], offline.poses[-1], atol=1e-5)
    assert np.abs(outputs[5][1] - offline.poses[5]).max() > 1e-4  # elsewhere the causal window differs
    with pytest.raises(ValueError, match="mode"):
        StreamingLifter(lifter, SIZE, mode="ahead")
