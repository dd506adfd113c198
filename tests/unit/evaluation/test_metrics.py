"""Metrics on hand-computed cases."""

import pytest
import torch

from crisscross.evaluation.metrics import (
    METRICS,
    bone_lengths,
    get_metric,
    mpjpe,
    n_mpjpe,
    p_mpjpe,
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


# --- lifting metrics: P-MPJPE, N-MPJPE, MPJVE --------------------------------------------------------------------


def _random_rotations(n: int, gen: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Tensor[n, 3, 3] proper rotations (det +1) from the QR decomposition of Gaussian matrices."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q[:, :, 0] *= torch.sign(torch.linalg.det(q))[:, None]  # make det +1
    return q


def test_p_mpjpe_is_zero_for_a_similar_copy():
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(8, 17, 3, generator=gen, dtype=torch.float64)
    rotation = _random_rotations(8, gen)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(8, dtype=torch.float64))
    scale = torch.rand(8, 1, 1, generator=gen, dtype=torch.float64) * 3 + 0.2
    shift = torch.randn(8, 1, 3, generator=gen, dtype=torch.float64) * 5
    pred = scale * (target @ rotation) + shift
    assert mpjpe(pred, target).min() > 0.1
    torch.testing.assert_close(p_mpjpe(pred, target), torch.zeros(8, dtype=torch.float64), atol=1e-5, rtol=0)
    pred32, target32 = pred.float(), target.float()  # also in float32
    torch.testing.assert_close(p_mpjpe(pred32, target32), torch.zeros(8), atol=1e-5, rtol=0)


def test_p_mpjpe_does_not_undo_a_reflection():
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(6, 17, 3, generator=gen, dtype=torch.float64)
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # det -1: no rotation reaches it
    assert (p_mpjpe(mirrored, target) > 0.1).all()
    rotated_mirror = mirrored @ _random_rotations(6, gen)
    assert (p_mpjpe(rotated_mirror, target) > 0.1).all()


def test_p_mpjpe_and_n_mpjpe_do_not_exceed_mpjpe_on_random_batches():
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        target = torch.randn(16, 17, 3, generator=gen)
        pred = target + 0.5 * torch.randn(16, 17, 3, generator=gen) + torch.randn(16, 1, 3, generator=gen)
        for candidate in (pred, torch.randn(16, 17, 3, generator=gen)):
            plain = mpjpe(candidate, target)
            assert (p_mpjpe(candidate, target) <= plain + 1e-5).all()
            assert (n_mpjpe(candidate, target) <= plain + 1e-5).all()


def test_alignment_minimises_squared_error_so_one_outlier_can_raise_the_mean_distance():
    # not a theorem for the mean distance: aligning spreads one far joint's error over all joints
    target = torch.randn(17, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    pred = target.clone()
    pred[16, 0] += 10.0
    assert p_mpjpe(pred, target) > mpjpe(pred, target) and n_mpjpe(pred, target) > mpjpe(pred, target)


def test_p_mpjpe_hand_computed_and_degenerate_inputs():
    # a 2-joint pose rotated by 90 degrees, doubled and shifted aligns exactly; the error is 0
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    pred = torch.tensor([[5.0, 5.0, 5.0], [5.0, 7.0, 5.0]])
    torch.testing.assert_close(p_mpjpe(pred, target), torch.tensor(0.0), atol=1e-6, rtol=0)
    # an all-equal prediction is aligned to the target's centroid: the error is the mean distance to the centroid
    still = torch.ones(2, 4, 3)
    target = torch.zeros(2, 4, 3)
    target[:, 0, 0], target[:, 1, 0] = 1.0, -1.0  # centroid 0, two joints 1 away, two at it
    out = p_mpjpe(still, target)
    assert not out.isnan().any()
    torch.testing.assert_close(out, torch.full((2,), 0.5))
    assert not p_mpjpe(target, still).isnan().any()  # all-equal target: error 0
    torch.testing.assert_close(p_mpjpe(target, still), torch.zeros(2))
    assert not p_mpjpe(torch.zeros(3, 3), torch.zeros(3, 3)).isnan()


def test_n_mpjpe_hand_computed_and_scale_invariant():
    # 2 joints: pred = (1,0,0), (0,1,0); target = (2,0,0), (0,0,0): s = <p,t>/<p,p> = 2/2 = 1, errors 1 and 1
    pred = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(n_mpjpe(pred, target), torch.tensor(1.0))  # mean(|(1,0,0) - (2,0,0)|, |(0,1,0)|)
    # pred = (1,0,0), (0,0,0) against (3,0,0), (0,4,0): s = 3, errors 0 and 4 -> 2 (MPJPE would be 3)
    pred = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    torch.testing.assert_close(n_mpjpe(pred, target), torch.tensor(2.0))
    torch.testing.assert_close(mpjpe(pred, target), torch.tensor(3.0))
    gen = torch.Generator().manual_seed(4)
    target = torch.randn(5, 17, 3, generator=gen, dtype=torch.float64)
    scale = torch.rand(5, 1, 1, generator=gen, dtype=torch.float64) * 3 + 0.2
    torch.testing.assert_close(n_mpjpe(scale * target, target), torch.zeros(5, dtype=torch.float64), atol=1e-10,
                               rtol=0)
    shifted = target + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # scale alone does not undo a shift
    assert (n_mpjpe(shifted, target) > 0).all()
    assert not n_mpjpe(torch.zeros(4, 3), target[0, :4]).isnan()  # all-zero prediction: s = 0
    torch.testing.assert_close(n_mpjpe(torch.zeros(4, 3), target[0, :4]), mpjpe(torch.zeros(4, 3), target[0, :4]))


def test_lifting_metrics_batch_keep_dtypes_and_pass_gradients():
    gen = torch.Generator().manual_seed(5)
    pred, target = torch.randn(3, 4, 17, 3, generator=gen), torch.randn(3, 4, 17, 3, generator=gen)
    for fn in (p_mpjpe, n_mpjpe):
        out = fn(pred, target)
        assert out.shape == (3, 4) and out.dtype == torch.float32
        torch.testing.assert_close(out[1, 2], fn(pred[1, 2], target[1, 2]))  # batched = one pose at a time
        assert fn(pred.double(), target.double()).dtype == torch.float64
        assert fn(pred.half(), target.half()).dtype == torch.float32
        assert torch.equal(pred, torch.randn(3, 4, 17, 3, generator=torch.Generator().manual_seed(5)))  # untouched
        with pytest.raises(ValueError, match="differ in shape"):
            fn(pred, target[..., :16, :])
    leaf = pred.double().requires_grad_()
    loss = p_mpjpe(leaf, target.double()).mean()
    loss.backward()
    assert leaf.grad is not None and leaf.grad.isfinite().all() and leaf.grad.abs().sum() > 0
    # the gradient is the derivative of the metric: compare with central finite differences on a few entries
    x0, t0 = pred[0, 0].double(), target[0, 0].double()
    x = x0.clone().requires_grad_()
    p_mpjpe(x, t0).backward()
    eps = 1e-6
    for j, c in ((0, 0), (5, 1), (16, 2)):
        bump = torch.zeros_like(x0)
        bump[j, c] = eps
        numeric = (p_mpjpe(x0 + bump, t0) - p_mpjpe(x0 - bump, t0)) / (2 * eps)
        torch.testing.assert_close(x.grad[j, c], numeric, atol=1e-6, rtol=1e-4)


def test_lifting_metrics_are_registered():
    assert {"p_mpjpe", "n_mpjpe", "mpjve"} <= set(METRICS)
    assert get_metric("mpjve").fn is velocity_error  # MPJVE is the velocity error, not a copy
    assert get_metric("p_mpjpe").fn is p_mpjpe and get_metric("n_mpjpe").fn is n_mpjpe
    for name in ("p_mpjpe", "n_mpjpe", "mpjve"):
        metric = get_metric(name)
        assert metric.name == name and metric.unit and "->" in metric.description
    positions = torch.arange(4.0)[:, None, None].expand(4, 2, 3)
    still = positions[:1].expand(4, 2, 3)
    torch.testing.assert_close(get_metric("mpjve").fn(still, positions), torch.full((3,), 3**0.5))
