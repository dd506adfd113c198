"""STCFormer lifters (``stcformer-lift*``): shapes, gradients, determinism, centre-frame output, published size."""

from __future__ import annotations

import pytest
import torch

from crisscross.data.skeleton import H36M_17_SKELETON
from crisscross.models import count_parameters, create_model, get_model_entry, list_models
from crisscross.models.criss_cross import CrissCrossEncoder
from crisscross.models.stcformer_lift import STCFormerLift

J = 17
VARIANTS = ("stcformer-lift", "stcformer-lift-small", "stcformer-lift-paper")
PAPER_PARAMETERS = 4_748_000  # zhenhuat/STCFormer model/stcformer.py, d_hid=256, layers=6, 17 joints


def _build(name: str, frames: int, out: int, *, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_joints=J, input_frames=frames, output_frames=out,
                        graph_parents=H36M_17_SKELETON.parents, body_parts=H36M_17_SKELETON.body_parts, **kw)


def _keypoints(frames: int, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, frames, J, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_variants_are_registered_for_lifting() -> None:
    assert set(VARIANTS) <= set(list_models("lifting"))
    assert all(get_model_entry(n).trainable for n in VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("frames", [27, 9])
@pytest.mark.parametrize("centre", [False, True])
def test_forward_backward(name: str, frames: int, centre: bool) -> None:
    out_frames = 1 if centre else frames
    model = _build(name, frames, out_frames).train()
    out = model(_keypoints(frames))
    assert out.shape == (2, out_frames, J, 3)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", VARIANTS)
def test_deterministic_under_seed(name: str) -> None:
    x = _keypoints(9)
    a, b = _build(name, 9, 9, seed=3), _build(name, 9, 9, seed=3)
    torch.manual_seed(5)
    ya = a.train()(x)
    torch.manual_seed(5)
    yb = b.train()(x)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)  # same weights, same dropout draws
    a.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b.eval()(x), rtol=0, atol=0)
        torch.testing.assert_close(a(x), a(x), rtol=0, atol=0)
    assert not torch.equal(_build(name, 9, 9, seed=4).eval()(x), a(x))


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("frames", [27, 9])
def test_centre_output_is_middle_of_sequence_output(name: str, frames: int) -> None:
    seq = _build(name, frames, frames).eval()
    centre = _build(name, frames, 1, seed=7).eval()
    centre.load_state_dict(seq.state_dict())
    x = _keypoints(frames)
    with torch.no_grad():
        full, mid = seq(x), centre(x)
    torch.testing.assert_close(mid, full[:, frames // 2 : frames // 2 + 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("frames", "out_frames"), [(27, 5), (27, 26), (9, 27), (10, 10), (10, 1)])
def test_wrong_frames_raise(name: str, frames: int, out_frames: int) -> None:
    with pytest.raises(ValueError, match="frames"):
        _build(name, frames, out_frames)


def test_wrong_input_length_raises() -> None:
    with pytest.raises(ValueError, match="input frames"):
        _build("stcformer-lift-small", 9, 1)(_keypoints(27))


def test_paper_variant_parameter_count() -> None:
    model = _build("stcformer-lift-paper", 27, 27)
    count = count_parameters(model)
    assert abs(count - PAPER_PARAMETERS) <= 0.02 * PAPER_PARAMETERS, count
    assert count == count_parameters(_build("stcformer-lift-paper", 243, 1))  # no per-frame tables


def test_paper_variant_layout() -> None:
    model = _build("stcformer-lift-paper", 27, 27)
    assert isinstance(model, STCFormerLift) and isinstance(model.encoder, CrissCrossEncoder)
    assert len(model.encoder.blocks) == 6
    attn = model.encoder.blocks[0].attn
    assert (attn.dim, attn.heads, attn.dim // 2 // attn.heads) == (256, 8, 16)
    assert tuple(attn.part_embed.weight.shape) == (5, 16)
    assert model.embed.bias is None and model.head.bias is None
    assert model.encoder.blocks[0].mlp.fc1.out_features == 1024 and model.encoder.blocks[0].mlp.fc1.bias is None
    assert model.encoder.blocks[0].mlp.drop.p == pytest.approx(0.1) and attn.dropout == 0.0


@pytest.mark.parametrize("name", VARIANTS)
def test_no_weight_decay_names_exist(name: str) -> None:
    model = _build(name, 9, 9, pos_embed="learned")
    names = model.no_weight_decay()
    assert names <= dict(model.named_parameters()).keys()
    assert any("part_embed" in n for n in names) and any("frame_embed" in n for n in names)


@pytest.mark.parametrize("options", [dict(pos_embed="learned"), dict(release_layout=False), dict(norm="sandwich"),
                                     dict(drop_path=0.2, attn_dropout=0.1)])
def test_options_build_and_run(options: dict) -> None:
    model = _build("stcformer-lift-small", 9, 1, **options).train()
    out = model(_keypoints(9))
    assert out.shape == (2, 1, J, 3) and torch.isfinite(out).all()


def test_builds_without_skeleton() -> None:
    torch.manual_seed(0)
    model = create_model("stcformer-lift", num_joints=J, input_frames=9, output_frames=9).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 9, J, 2)).shape == (1, 9, J, 3)


def test_bad_pos_embed_raises() -> None:
    with pytest.raises(ValueError, match="pos_embed"):
        _build("stcformer-lift-small", 9, 1, pos_embed="none")
