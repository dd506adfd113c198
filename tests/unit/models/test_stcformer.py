"""STCFormer family: causality, key/value-cached decoding, options and attention capture."""

from __future__ import annotations

import pytest
import torch

from crisscross.models import capture_attention, create_model
from crisscross.models.criss_cross import CrissCrossDecoderBlock
from crisscross.models.stcformer import PoseEmbedding, STCFormer, STCFormerAR

PARTS_22 = (0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4)


def _loud_head(model: torch.nn.Module) -> torch.nn.Module:
    """Re-initialise the near-zero output head so predictions depend visibly on the network."""
    torch.nn.init.normal_(model.head.weight, std=0.5)
    return model


def _model(name: str, t_in: int = 10, t_out: int = 25, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_joints=22, input_frames=t_in, output_frames=t_out, body_parts=PARTS_22, **kw)
    return _loud_head(model).eval()


@pytest.mark.parametrize("norm", ["pre", "post", "sandwich"])
@pytest.mark.parametrize("pos_embed", ["spe", "learned", "none"])
def test_decoder_block_is_causal(norm: str, pos_embed: str) -> None:
    torch.manual_seed(0)
    block = CrissCrossDecoderBlock(16, 2, mlp_ratio=2.0, dropout=0.0, norm=norm, spe=pos_embed == "spe",
                                   body_parts=PARTS_22[:5]).eval()
    x, mem = torch.randn(2, 7, 5, 16), torch.randn(2, 4, 5, 16)
    memory = block.cross_attn.project_memory(mem, torch.randn(2, 7, 5, 16))
    t = 3
    x2 = x.clone()
    x2[:, t:] += torch.randn_like(x2[:, t:])
    y, y2 = block(x, memory), block(x2, memory)
    torch.testing.assert_close(y[:, :t], y2[:, :t])
    assert not torch.allclose(y[:, t:], y2[:, t:])


@pytest.mark.parametrize("t", [0, 5, 17])
def test_ar_teacher_forcing_is_causal(t: int) -> None:
    model = _model("stcformer-ar")
    past, future = torch.randn(2, 10, 22, 3), torch.randn(2, 25, 22, 3)
    perturbed = future.clone()
    perturbed[:, t] += 1.0  # decoder input at position t + 1
    pred, _ = model.training_outputs(past, future)
    pred2, _ = model.training_outputs(past, perturbed)
    torch.testing.assert_close(pred[:, : t + 1], pred2[:, : t + 1])
    assert not torch.allclose(pred[:, t + 1 :], pred2[:, t + 1 :])


@pytest.mark.parametrize("pos_embed", ["spe", "learned", "none"])
@pytest.mark.parametrize("norm", ["pre", "post", "sandwich"])
def test_ar_cached_equals_uncached(pos_embed: str, norm: str) -> None:
    # In float64 the two paths agree to rounding; in float32 to ~1e-5 m after 25 fed-back steps.
    model = _model("stcformer-ar", pos_embed=pos_embed, norm=norm).double()
    past = torch.randn(2, 10, 22, 3, dtype=torch.float64) * 0.3
    with torch.no_grad():
        cached, uncached = model.decode(past, use_cache=True), model.decode(past, use_cache=False)
    torch.testing.assert_close(cached, uncached, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(model(past), cached)


def test_ar_cached_equals_uncached_float32() -> None:
    model = _model("stcformer-ar")
    past = torch.randn(4, 10, 22, 3) * 0.3
    with torch.no_grad():
        cached, uncached = model.decode(past, use_cache=True), model.decode(past, use_cache=False)
    torch.testing.assert_close(cached, uncached, rtol=1e-3, atol=1e-4)


def test_ar_decoding_matches_teacher_forcing_on_own_predictions() -> None:
    # Fed its own predictions as "ground truth", teacher forcing reproduces autoregressive decoding.
    model = _model("stcformer-ar", t_in=8, t_out=6)
    past = torch.randn(2, 8, 22, 3) * 0.3
    with torch.no_grad():
        decoded = model.decode(past)
        forced, _ = model.training_outputs(past, decoded)
    torch.testing.assert_close(forced, decoded, rtol=1e-4, atol=1e-5)


def test_ar_flag_loss_and_scheduled_sampling() -> None:
    model = _model("stcformer-ar", flag_loss_weight=0.5, sampling_ratio=0.5).train()
    past, future = torch.randn(2, 10, 22, 3), torch.randn(2, 25, 22, 3)
    pred, aux = model.training_outputs(past, future)
    assert set(aux) == {"flag"} and aux["flag"] >= 0
    (pred.mean() + aux["flag"]).backward()
    model.sampling_ratio = 0.0
    model.eval()
    with torch.no_grad():
        a, _ = model.training_outputs(past, future)
        b, _ = model.training_outputs(past, future)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ar_free_running_trains_on_its_own_rollout() -> None:
    # The free-running prediction ignores the ground-truth future, equals decoding, and is differentiable
    # through every step: the loss on the last frame reaches the decoder input embedding of the first.
    model = _model("stcformer-ar", t_in=8, t_out=6, free_running=True).train()
    past = torch.randn(2, 8, 22, 3) * 0.3
    pred, aux = model.training_outputs(past, torch.randn(2, 6, 22, 3))
    again, _ = model.training_outputs(past, torch.zeros(2, 6, 22, 3))
    with torch.no_grad():
        decoded = model.decode(past)
    torch.testing.assert_close(pred, again, rtol=0, atol=0)
    torch.testing.assert_close(pred.detach(), decoded, rtol=1e-5, atol=1e-6)
    assert set(aux) == {"flag"} and aux["flag"] >= 0
    pred[:, -1].square().sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith("embed_dec"))
    # teacher forcing stays the default and depends on the ground truth
    model.free_running = False
    forced, _ = model.training_outputs(past, torch.randn(2, 6, 22, 3))
    assert not torch.allclose(forced, pred)


@pytest.mark.parametrize("name", ["stcformer", "stcformer-course-23k"])
def test_one_shot_stepwise_equals_forward(name: str) -> None:
    model = _model(name)
    past = torch.randn(2, 10, 22, 3) * 0.3
    with torch.no_grad():
        full = model(past)
        torch.testing.assert_close(model.decode_stepwise(past, use_cache=True), full, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.decode_stepwise(past, use_cache=False), full, rtol=1e-4, atol=1e-5)


def test_one_shot_output_frames_causal_in_queries() -> None:
    # Changing the decoder query of frame t leaves earlier output frames unchanged.
    model = _model("stcformer")
    past = torch.randn(2, 10, 22, 3)
    queries, memory = model._prepare(past)
    q2 = queries.clone()
    q2[:, 12] += 1.0
    with torch.no_grad():
        y, y2 = model.decoder(queries, memory), model.decoder(q2, memory)
    torch.testing.assert_close(y[:, :12], y2[:, :12])


def test_residual_last_pose_starts_near_last_frame() -> None:
    torch.manual_seed(0)
    model = STCFormer(num_joints=22, input_frames=10, output_frames=25, body_parts=PARTS_22).eval()
    past = torch.randn(2, 10, 22, 3)
    with torch.no_grad():
        out = model(past)
    assert (out - past[:, -1:]).abs().max() < 0.1


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError):
        create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, norm="mid")
    with pytest.raises(ValueError):
        create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, pos_embed="sine")
    with pytest.raises(ValueError):
        create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, dim=30, heads=4)


def test_no_weight_decay_lists_embeddings() -> None:
    spe = _model("stcformer")
    assert any("part_embed" in n for n in spe.no_weight_decay())
    learned = _model("stcformer-ar", pos_embed="learned")
    assert {"enc_pos.frame_embed", "enc_pos.joint_embed", "dec_pos.frame_embed"} <= learned.no_weight_decay()


@pytest.mark.parametrize("name", ["stcformer", "stcformer-ar", "stacformer", "sttformer", "conv-stgat"])
def test_capture_attention_same_outputs_and_stochastic_rows(name: str) -> None:
    model = _model(name) if name.startswith("stc") else create_model(
        name, num_joints=22, input_frames=10, output_frames=25).eval()
    past = torch.randn(2, 10, 22, 3) * 0.3
    with torch.no_grad():
        plain = model.training_outputs(past, torch.randn(2, 25, 22, 3))[0] if name == "stcformer-ar" else model(past)
        with capture_attention(model) as records:
            if name == "stcformer-ar":
                torch.manual_seed(0)
                future = torch.randn(2, 25, 22, 3)
                captured = model.training_outputs(past, future)[0]
                plain = model.training_outputs(past, future)[0]
            else:
                captured = model(past)
        torch.testing.assert_close(captured, plain)
    assert records
    for r in records:
        assert r.weights.ndim == 4 and r.grouped.ndim == 5 and r.weights.shape[0] == 2
        torch.testing.assert_close(r.weights.sum(-1), torch.ones_like(r.weights[..., 0]))
    # Capture is off again afterwards.
    assert all(getattr(m, "attention_sink", None) is None for m in model.modules())


def test_capture_records_stcformer_layout() -> None:
    model = _model("stcformer")  # 2 encoder + 2 decoder blocks, 2 heads
    with torch.no_grad(), capture_attention(model) as records:
        model(torch.randn(2, 10, 22, 3))
    kinds = [(r.block, r.kind, r.mode, tuple(r.weights.shape)) for r in records]
    assert ("encoder.blocks.0.attn", "spatial", "self", (2, 2, 22, 22)) in kinds
    assert ("encoder.blocks.1.attn", "temporal", "self", (2, 2, 10, 10)) in kinds
    assert ("decoder.blocks.0.cross_attn", "temporal", "cross", (2, 2, 25, 10)) in kinds
    assert ("decoder.blocks.1.cross_attn", "spatial", "cross", (2, 2, 22, 22)) in kinds
    assert len(records) == 2 * 2 + 2 * 4
    causal = next(r for r in records if r.block == "decoder.blocks.0.self_attn" and r.kind == "temporal")
    assert torch.all(causal.weights.triu(diagonal=1) == 0)
    assert isinstance(model, STCFormer) and not isinstance(model, STCFormerAR)


# -- pose features ---------------------------------------------------------------------------------------
def test_pose_embedding_offsets_features_hand_computed() -> None:
    embed = PoseEmbedding(6, "offsets")
    with torch.no_grad():
        embed.weight.copy_(torch.eye(6))
        embed.bias.zero_()
    poses = torch.tensor([[[[1.0, -0.5, 0.25]], [[1.01, -0.48, 0.25]]]])  # [1, 2, 1, 3] metres
    out = embed(poses, poses[:, -1:])
    expected = torch.tensor([[[[1.0, -0.5, 0.25, -0.1, -0.2, 0.0]], [[1.01, -0.48, 0.25, 0.0, 0.0, 0.0]]]])
    torch.testing.assert_close(out, expected)


def test_pose_embedding_raw_keeps_checkpoint_keys() -> None:
    # Checkpoints written before the option (a plain Linear(3, D) named "embed") still load.
    model = _model("stcformer", dim=32, heads=1)
    assert model.state_dict()["embed.weight"].shape == (32, 3)
    assert _model("stcformer", dim=32, heads=1, pose_features="offsets").state_dict()["embed.weight"].shape == (32, 6)
    ar = _model("stcformer-ar", dim=32, heads=1, pose_features="offsets").state_dict()
    assert ar["embed_dec.weight"].shape == (32, 8)


def test_offsets_keep_millimetre_motion_under_bf16() -> None:
    # Why "offsets" exists: a 1 mm step of a joint 0.9 m from the root vanishes when the raw input is rounded
    # to bf16 (4 mm resolution there), and survives as an offset from the reference pose.
    ref = torch.full((1, 1, 1, 3), 230 / 256)  # 0.898 m, a bf16 value; bf16's step is 1/256 m in [0.5 m, 1 m)
    moved = ref + torch.tensor([0.001, 0.0, 0.0])
    for features, survives in (("raw", False), ("offsets", True)):
        embed = PoseEmbedding(8, features)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a, b = embed(ref, ref), embed(moved, ref)
        assert a.dtype == torch.bfloat16
        assert bool((a != b).any()) == survives, features


@pytest.mark.parametrize("name", ["stcformer", "stcformer-ar"])
def test_offsets_model_shapes_gradients_and_causality(name: str) -> None:
    model = _model(name, pose_features="offsets").train()
    past, future = torch.randn(2, 10, 22, 3) * 0.3, torch.randn(2, 25, 22, 3) * 0.3
    pred = model.training_outputs(past, future)[0] if name == "stcformer-ar" else model(past)
    assert pred.shape == (2, 25, 22, 3)
    pred.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        if name == "stcformer-ar":
            torch.testing.assert_close(model.decode(past, use_cache=True), model.decode(past, use_cache=False),
                                       rtol=1e-3, atol=1e-4)
        else:
            torch.testing.assert_close(model.decode_stepwise(past), model(past), rtol=1e-4, atol=1e-5)


def test_unknown_pose_features_is_an_error() -> None:
    with pytest.raises(ValueError, match="pose_features"):
        create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, pose_features="meters")


def test_temporal_expansion_is_the_plain_convolution_with_a_contiguous_output() -> None:
    from crisscross.models.layers import TemporalExpansion

    torch.manual_seed(0)
    expand = TemporalExpansion(10, 25)
    x = torch.randn(3, 10, 22, 16)  # [B, T_in, J, D]
    out = expand(x)
    assert out.shape == (3, 25, 22, 16) and out.is_contiguous()
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, expand.conv.weight, expand.conv.bias, padding=1))


def test_qkv_halves_are_the_spatial_and_temporal_halves_of_q_k_v() -> None:
    from crisscross.models.criss_cross import CrissCrossAttention

    torch.manual_seed(0)
    attn = CrissCrossAttention(16, 2)
    x = torch.randn(2, 5, 22, 16)
    qkv = attn.qkv(x)  # [B, T, J, 3D]: Q, K, V, each [spatial D/2 | temporal D/2]
    expected = [qkv[..., i * 8:(i + 1) * 8] for i in range(6)]
    for got, want in zip(attn._qkv_halves(x), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_criss_cross_block_stays_in_bf16_under_autocast() -> None:
    # The fp32 part embedding once promoted the spatial half to fp32, and with it the concatenation and the
    # projection's input: a full-size cast and fp32 copy per block.
    from crisscross.models.criss_cross import CrissCrossAttention

    torch.manual_seed(0)
    attn = CrissCrossAttention(16, 1, spe=True, body_parts=PARTS_22)
    seen = []
    attn.proj.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(torch.randn(2, 5, 22, 16))
    assert seen == [torch.bfloat16] and out.dtype == torch.bfloat16
