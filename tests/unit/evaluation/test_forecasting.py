"""evaluate_forecaster and make_predict_fn on motions whose errors are known by hand."""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.evaluation.forecasting import evaluate_forecaster, make_predict_fn, zero_velocity_predict_fn
from crisscross.evaluation.protocols import ForecastProtocol

PROTOCOL = ForecastProtocol("test-10-25", "toy", 10, 25, "strided", stride=7)


def _drifting_motion(speeds=(1.0, 3.0), length=120) -> MotionSet:
    """Every joint moves along x at ``speed`` mm per frame; one action per speed."""
    sequences, keys = [], []
    for a, speed in enumerate(speeds):
        frames = (np.arange(length, dtype=np.float32) * speed)[:, None]
        positions = np.zeros((length, 32, 3), np.float32)
        positions[:, :, 0] = frames
        sequences.append(positions)
        keys.append(SequenceKey("S1", f"action{a}", 1))
    return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, 25, dataset="toy", split="val")


def test_zero_velocity_errors_hand_computed():
    motion = _drifting_motion()
    result = evaluate_forecaster(zero_velocity_predict_fn(25), motion, PROTOCOL, batch_size=3)
    json.dumps(result)  # serialisable
    # Future frame k is off by k * speed on every joint; the 4 unpredicted joints take the truth (0 error).
    for action, speed in (("action0", 1.0), ("action1", 3.0)):
        row22 = result["mpjpe22_mm"]["per_action"][action]
        row32 = result["mpjpe32_mm"]["per_action"][action]
        assert row22["80"] == pytest.approx(2 * speed) and row22["1000"] == pytest.approx(25 * speed)
        assert row32["80"] == pytest.approx(2 * speed * 28 / 32)
        assert row22["avg"] == pytest.approx(13 * speed)
    assert result["mpjpe22_mm"]["mean"]["400"] == pytest.approx(10 * 2.0)  # unweighted mean over actions
    assert result["num_windows"] == 2 * ((120 - 25 - 50) // 7 + 1)
    assert result["joint_counts"] == {"mpjpe32_mm": 32, "mpjpe22_mm": 22}
    assert len(result["mpjpe32_mm"]["per_frame"]) == 25


def test_literature_fill_can_be_switched_off():
    motion = _drifting_motion(speeds=(1.0,))
    result = evaluate_forecaster(zero_velocity_predict_fn(25), motion, PROTOCOL,
                                 fill_unpredicted_from_target=False)
    assert result["mpjpe32_mm"]["mean"]["80"] == pytest.approx(2.0)


class _RepeatLast(nn.Module):
    """Repeats the last input frame ``steps`` times; records what it saw."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.seen: list[tuple[int, ...]] = []
        self.max_abs = 0.0

    def forward(self, past: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(past.shape))
        self.max_abs = max(self.max_abs, float(past.abs().max()))
        assert not self.training
        return past[:, -1:].expand(-1, self.steps, -1, -1)


def test_make_predict_fn_scales_selects_joints_rolls_out_and_restores_mode():
    motion = _drifting_motion(speeds=(1.0,))
    model = _RepeatLast(steps=10).train()
    predict = make_predict_fn(model, H36M_SKELETON, output_frames=25)
    result = evaluate_forecaster(predict, motion, PROTOCOL)
    reference = evaluate_forecaster(zero_velocity_predict_fn(25), motion, PROTOCOL)
    assert result["mpjpe32_mm"] == reference["mpjpe32_mm"]
    assert model.training  # mode restored
    assert len(model.seen) % 3 == 0 and all(shape[1:] == (10, 22, 3) for shape in model.seen)  # 3 steps of 10
    assert model.max_abs < 0.2  # metres: positions here stay below 120 mm


def test_make_predict_fn_fills_copies_and_constant_joints():
    past = torch.randn(2, 10, 32, 3) * 100
    predict = make_predict_fn(_RepeatLast(steps=25), H36M_SKELETON)
    out = predict(past)
    assert out.shape == (2, 25, 32, 3)
    torch.testing.assert_close(out[:, :, 16], out[:, :, 13])  # LeftShoulder copies Neck
    torch.testing.assert_close(out[:, :, 0], past[:, -1:, 0].expand(2, 25, 3))


def test_bad_prediction_shape_is_reported():
    motion = _drifting_motion(speeds=(1.0,))
    with pytest.raises(ValueError, match="expected"):
        evaluate_forecaster(zero_velocity_predict_fn(10), motion, PROTOCOL)
