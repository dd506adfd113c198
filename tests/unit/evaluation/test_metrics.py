"""Metrics on hand-computed cases."""

import pytest
import torch

from crisscross.evaluation.metrics import (
    METRICS,
    bone_lengths,
    get_metric,
    mpjpe,
    per_joint_error,
    velocity,
    velocity_error,
)


def test_mpjpe_hand_computed():
    target = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]])  # [1, J=2, 3]
    pred = torch.zeros_like(target)
    torch.testing.assert_close(per_joint_error(pred, target), torch.tensor([[5.0, 0.0]]))
    torch.testing.assert_close(mpjpe(pred, target), torch.tensor([2.5]))


def test_mpjpe_keeps_leading_dims_and_batches_like_single_samples():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 6, 5, 3, generator=gen), torch.randn(4, 6, 5, 3, generator=gen)
    batched = mpjpe(pred, target)
    assert batched.shape == (4, 6)
    torch.testing.assert_close(batched[2], mpjpe(pred[2], target[2]))


def test_half_inputs_are_computed_in_float32():
    pred = torch.full((2, 3, 3), 1000.0, dtype=torch.float16)
    target = torch.full((2, 3, 3), 1001.0, dtype=torch.float16)
    out = mpjpe(pred, target)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((2,), 3**0.5))


def test_velocity_helpers():
    positions = torch.arange(4.0)[:, None, None].expand(4, 2, 3)  # moves by (1, 1, 1) per frame
    assert velocity(positions).shape == (3, 2, 3)
    torch.testing.assert_close(velocity(positions), torch.ones(3, 2, 3))
    still = positions[:1].expand(4, 2, 3)
    torch.testing.assert_close(velocity_error(still, positions), torch.full((3,), 3**0.5))


def test_bone_lengths_and_shape_errors():
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 3.0]])
    torch.testing.assert_close(bone_lengths(positions, (-1, 0, 1)), torch.tensor([2.0, 3.0]))
    with pytest.raises(ValueError, match="differ in shape"):
        mpjpe(torch.zeros(2, 3, 3), torch.zeros(2, 4, 3))


def test_the_metric_registry_names_pure_functions_with_units():
    assert {"mpjpe", "per_joint_error", "velocity_error"} <= set(METRICS)
    assert all(m.unit and m.description and m.name == name for name, m in METRICS.items())
    pred = torch.zeros(1, 2, 2, 3)
    target = torch.zeros(1, 2, 2, 3)
    target[0, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # one joint 5 away in frame 0
    assert get_metric("mpjpe").fn(pred, target).tolist() == [[2.5, 0.0]]
    assert get_metric("per_joint_error").fn(pred, target)[0, 0].tolist() == [5.0, 0.0]
    with pytest.raises(KeyError, match="unknown metric 'mpjpe2'; known metrics: mpjpe"):
        get_metric("mpjpe2")
