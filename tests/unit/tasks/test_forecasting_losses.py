"""Forecasting training losses: hand-computed cases, and the per-frame weights of ``train.frame_weights``."""

from __future__ import annotations

import pytest
import torch

from crisscross.config import ConfigError, load_config
from crisscross.data.datasets import load_motion
from crisscross.models.registry import build_model
from crisscross.tasks.forecasting import ForecastingTask
from crisscross.tasks.forecasting.losses import mpjpe_loss, mse_loss, velocity_loss
from crisscross.training.precision import Precision
from crisscross.training.setup import forward_context


def _offsets(per_frame: list[float], joints: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """pred and target [2, T, J, 3] whose error at frame t is per_frame[t] at every joint (along x)."""
    target = torch.randn(2, len(per_frame), joints, 3)
    pred = target.clone()
    pred[..., 0] += torch.tensor(per_frame).view(1, -1, 1)
    return pred, target


def test_frame_weights_give_the_weighted_mean_over_frames():
    pred, target = _offsets([1.0, 3.0])
    assert float(mpjpe_loss(pred, target)) == pytest.approx(2.0, rel=1e-6)
    assert float(mpjpe_loss(pred, target, torch.tensor([3.0, 1.0]))) == pytest.approx((3 * 1 + 1 * 3) / 4, rel=1e-6)
    # the squared error of one coordinate in three: e^2 / 3 per frame
    assert float(mse_loss(pred, target, torch.tensor([1.0, 0.0]))) == pytest.approx(1 / 3, rel=1e-6)


def test_uniform_frame_weights_change_nothing():
    pred, target = torch.randn(4, 5, 7, 3), torch.randn(4, 5, 7, 3)
    last = torch.randn(4, 1, 7, 3)
    uniform = torch.full((5,), 0.3)
    assert torch.allclose(mpjpe_loss(pred, target, uniform), mpjpe_loss(pred, target))
    assert torch.allclose(mse_loss(pred, target, uniform), mse_loss(pred, target))
    assert torch.allclose(velocity_loss(pred, target, last, uniform), velocity_loss(pred, target, last))


def test_the_velocity_term_weights_the_displacement_into_each_frame():
    # errors 1 then 3 along x: displacement errors 1 (from the exact last observed pose) and 2
    pred, target = _offsets([1.0, 3.0])
    last = target[:, :1] - 0.5
    assert float(velocity_loss(pred, target, last)) == pytest.approx(1.5, rel=1e-6)
    assert float(velocity_loss(pred, target, last, torch.tensor([0.0, 1.0]))) == pytest.approx(2.0, rel=1e-6)


def test_frame_weights_of_the_wrong_length_are_refused():
    pred, target = _offsets([1.0, 3.0])
    with pytest.raises(ValueError, match=r"frame_weights has shape \(3,\), expected \(2,\)"):
        mpjpe_loss(pred, target, torch.ones(3))


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.frame_weights=[1, 2]"], r"train.frame_weights: has 2 weights, expected one per predicted frame "
                                     r"\(data.output_frames=25\)"),
    (["train.frame_weights=[]"], "train.frame_weights: must be a non-empty list"),
    (["data.output_frames=2", "train.frame_weights=[1, -1]"], "train.frame_weights: must be a non-empty list"),
    (["data.output_frames=2", "train.frame_weights=[0, 0]"], "positive sum"),
    (["task=lifting", "data.output_frames=1", "train.frame_weights=[1]"], "task 'lifting' has none"),
])
def test_bad_frame_weights_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_the_training_loss_applies_the_configured_frame_weights():
    """Weight on the first predicted frame only: the position term is that frame's MPJPE."""
    weights = "[" + ", ".join(["1"] + ["0"] * 24) + "]"
    cfg = load_config(None, [f"train.frame_weights={weights}", "train.velocity_loss_weight=1",
                             "model.name=zero-velocity", "model.args={}"])
    motion = load_motion("synthetic", split="val")
    model = build_model("zero-velocity", {}, motion.skeleton, 10, 25)
    task = ForecastingTask()
    batch = task.sample_bank(motion, cfg.data, torch.device("cpu")).batch(torch.arange(4), cfg.data.augment, None)
    _, terms = task.training_loss(model, batch, cfg.data, cfg.train,
                                  forward_context(Precision("fp32", "cpu"), "auto", "cpu"))
    past, future = batch[:, :10], batch[:, 10:]
    first = torch.linalg.vector_norm(past[:, -1] - future[:, 0], dim=-1).mean()
    assert terms[1] == pytest.approx(float(first), rel=1e-6)
    # zero-velocity predicts no displacement: the velocity error into frame 1 equals the position error there
    assert terms[2] == pytest.approx(float(first), rel=1e-6)
