"""The learned lifters (VideoPose3D, PoseFormer, Martinez et al.'s baseline): shapes, gradients, determinism,
receptive fields and parameter counts on tiny inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from crisscross.models import count_parameters, create_model, get_model_entry, list_models

J = 17
VARIANTS = ["videopose3d", "videopose3d-small", "poseformer", "poseformer-small", "simple-baseline",
            "simple-baseline-small"]
FIELDS = (9, 27, 81)
# The test cases: every variant at every receptive field among FIELDS (all three models support all three).
CASES = [(name, r) for name in VARIANTS for r in FIELDS]
# PoseFormer's frame-weighting convolution adds its bias equally to every channel, and the head's LayerNorm takes
# that constant away again: its gradient is zero up to rounding (exactly zero on some PyTorch builds), as in the
# published model.
CANCELLED_BY_NORM = {"poseformer": "weighted_mean.bias"}  # by model family (name prefix)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny batches: one intra-op thread is faster, and far faster on a loaded machine (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name: str, frames: int, seed: int = 0, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_joints=J, input_frames=frames, output_frames=1, **overrides)


def _keypoints(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, J, 2, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_registered_as_lifting_models() -> None:
    assert set(VARIANTS) <= set(list_models("lifting"))
    assert not set(VARIANTS) & set(list_models("forecasting"))
    assert all(get_model_entry(name).description for name in VARIANTS)


@pytest.mark.parametrize(("name", "frames"), CASES)
def test_forward_backward(name: str, frames: int) -> None:
    model = _build(name, frames).train()
    out = model(_keypoints(2, frames))
    assert out.shape == (2, 1, J, 3)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        if any(name.startswith(family) and pname == p_name for family, p_name in CANCELLED_BY_NORM.items()):
            assert p.grad.abs().max() < 1e-4, f"{name}: {pname} should be cancelled by the head's LayerNorm"
        else:
            assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("frames", (9, 27))
def test_deterministic_under_seed(name: str, frames: int) -> None:
    x = _keypoints(3, frames)
    a, b = _build(name, frames, seed=5).eval(), _build(name, frames, seed=5).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
        torch.testing.assert_close(a(x), a(x), rtol=0, atol=0)
        assert a(x[:1]).shape == (1, 1, J, 3)  # batch 1 works in eval mode (BatchNorm uses running stats)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("output_frames", (0, 2, 27))
def test_centre_frame_only(name: str, output_frames: int) -> None:
    with pytest.raises(ValueError, match=name):
        create_model(name, num_joints=J, input_frames=27, output_frames=output_frames)


@pytest.mark.parametrize("name", ["videopose3d", "videopose3d-small"])
@pytest.mark.parametrize("frames", (10, 25, 26, 3))
def test_videopose3d_rejects_unknown_receptive_fields(name: str, frames: int) -> None:
    with pytest.raises(ValueError, match="receptive fields"):
        create_model(name, num_joints=J, input_frames=frames, output_frames=1)


@pytest.mark.parametrize("frames", (9, 27))
def test_videopose3d_receptive_field_is_exactly_input_frames(frames: int) -> None:
    model = _build("videopose3d-small", frames).eval()
    assert model.receptive_field == frames
    x = _keypoints(2, frames + 2)
    with torch.no_grad():
        long = model(x)  # R + 2 frames: one output per window of R frames, R + 2 - R + 1 = 3
        assert long.shape == (2, 3, J, 3)
        for start in range(3):
            torch.testing.assert_close(long[:, start:start + 1], model(x[:, start:start + frames]))
        # Frame 0 is seen by the first window only; the last frame by the last window only.
        for frame, seen in ((0, 0), (frames + 1, 2)):
            y = x.clone()
            y[:, frame] += 1.0
            changed = (model(y) - long).abs().amax(dim=(0, 2, 3)) > 1e-6
            assert changed.tolist() == [i == seen for i in range(3)]
        with pytest.raises(ValueError, match="at least"):
            model(x[:, :frames - 1])


@pytest.mark.parametrize("name", ["simple-baseline", "simple-baseline-small"])
def test_simple_baseline_reads_the_centre_frame_only(name: str) -> None:
    model = _build(name, 27).eval()
    x = _keypoints(2, 27)
    y = x + torch.randn_like(x)
    y[:, 13] = x[:, 13]
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(y), rtol=0, atol=0)
        z = x.clone()
        z[:, 13] += 0.5
        assert not torch.allclose(model(x), model(z))


@pytest.mark.parametrize("name", ["poseformer", "poseformer-small"])
def test_poseformer_uses_every_frame_and_fixed_length(name: str) -> None:
    model = _build(name, 9).eval()
    x = _keypoints(2, 9)
    with torch.no_grad():
        base = model(x)
        for frame in (0, 8):
            y = x.clone()
            y[:, frame] += 0.5
            assert not torch.allclose(model(y), base)
        with pytest.raises(ValueError, match="9 frames"):
            model(_keypoints(2, 11))
    assert set(model.no_weight_decay()) <= dict(model.named_parameters()).keys()


@pytest.mark.parametrize("name", VARIANTS)
def test_rejects_wrong_joint_count(name: str) -> None:
    model = _build(name, 9).eval()
    with pytest.raises(ValueError, match="keypoints"):
        model(torch.zeros(1, 9, J + 1, 2))


# Trainable parameters at 17 joints. The published 243-frame VideoPose3D has 16.95M (16,952,371 here); the
# PoseFormer paper reports 9.6M at 81 frames (9,602,885 here).
PARAMETERS = {
    ("videopose3d", 27): 8_555_571, ("videopose3d", 81): 12_753_971, ("videopose3d", 243): 16_952_371,
    ("videopose3d-small", 27): 566_067, ("videopose3d-small", 243): 1_092_403,
    ("poseformer", 27): 9_573_455, ("poseformer", 81): 9_602_885,
    ("poseformer-small", 27): 1_216_911,
    ("simple-baseline", 27): 4_296_755, ("simple-baseline-small", 27): 155_187,
}


@pytest.mark.parametrize(("name", "frames"), list(PARAMETERS))
def test_parameter_counts(name: str, frames: int) -> None:
    assert count_parameters(_build(name, frames)) == PARAMETERS[(name, frames)]


def test_videopose3d_243_matches_the_published_size() -> None:
    count = count_parameters(_build("videopose3d", 243))
    assert abs(count - 16.95e6) < 0.01e6


def test_overrides_reach_the_model() -> None:
    assert count_parameters(_build("videopose3d", 9, channels=64)) < count_parameters(_build("videopose3d-small", 9))
    assert len(_build("simple-baseline", 9, blocks=3).blocks) == 3
