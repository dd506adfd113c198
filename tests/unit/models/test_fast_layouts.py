"""The fast layouts of the explicit attention and the criss-cross layers give the plain layouts' numbers.

``crisscross.models.attention.fast_layouts(False)`` runs the plain layouts; both must agree
on outputs and on every parameter's gradient to float rounding, in fp32 and under bf16 autocast, and leave
state-dict names, attention capture and incremental decoding alone.
"""

import pytest
import torch

from crisscross.data.skeleton import H36M_SKELETON
from crisscross.models import attention
from crisscross.models.attention import attend, capture_attention, explicit_attention, fast_layouts
from crisscross.models.registry import build_model


def _outputs_and_grads(model, past, future, fast, dtype, seed=0):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout draws for both layouts
    with fast_layouts(fast), explicit_attention(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        outputs = getattr(model, "training_outputs", None)
        pred = outputs(past, future)[0] if outputs is not None else model(past)
    pred.float().square().mean().backward()
    return pred.detach().float(), {n: p.grad.detach().float().clone() for n, p in model.named_parameters()
                                   if p.grad is not None}


def _assert_close_grads(fast, old, rtol, atol):
    """Every gradient close, ``atol`` relative to the largest gradient entry of the model: a few gradients are
    rounding noise around 0 (the bias of the query expansion, which a LayerNorm follows, is ~1e-11)."""
    assert fast.keys() == old.keys()
    scale = max(g.abs().max().item() for g in old.values())
    for name in old:
        torch.testing.assert_close(fast[name], old[name], rtol=rtol, atol=atol * scale, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("name", "args"), [
    ("stcformer", {}),  # the default: 2 heads per pathway, SPE
    ("stcformer", {"heads": 1, "pose_features": "offsets"}),  # h36m_stcformer.yaml's model
    ("stcformer", {"dim": 32, "dropout": 0.1, "drop_path": 0.1}),  # dropout in train mode: same draws
    ("stcformer", {"dim": 32, "pos_embed": "learned", "norm": "post"}),
    ("stcformer-ar", {"dim": 32}),
])
def test_fast_layouts_match_the_old_path(name, args, dtype):
    torch.manual_seed(0)
    model = build_model(name, args, H36M_SKELETON, 10, 25)
    model.train()
    past, future = torch.randn(4, 10, 22, 3) * 0.3, torch.randn(4, 25, 22, 3) * 0.3
    out_old, grads_old = _outputs_and_grads(model, past, future, fast=False, dtype=dtype)
    out_fast, grads_fast = _outputs_and_grads(model, past, future, fast=True, dtype=dtype)
    if dtype == torch.float32:
        torch.testing.assert_close(out_fast, out_old, rtol=1e-5, atol=1e-6)
        _assert_close_grads(grads_fast, grads_old, rtol=1e-4, atol=1e-5)
    else:  # a few scores may round to the neighbouring bf16 value when the GEMM sums in another order
        torch.testing.assert_close(out_fast, out_old, rtol=0.02, atol=0.01)
        _assert_close_grads(grads_fast, grads_old, rtol=0.05, atol=0.01)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("lq", "lk", "causal", "masked"), [
    (10, 10, False, False), (25, 10, False, False), (10, 10, True, False), (12, 7, False, True),
    (22, 22, False, False), (25, 25, True, False), (25, 25, False, True),
])
def test_attend_fast_matches_old_for_short_and_long_rows(lq, lk, causal, masked, dtype):
    torch.manual_seed(0)
    q = torch.randn(3, 4, 2, lq, 16, requires_grad=True)
    k = torch.randn(3, 4, 2, lk, 16, requires_grad=True)
    v = torch.randn(3, 4, 2, lk, 16, requires_grad=True)
    mask = (torch.rand(lq, lk) > 0.3) | torch.eye(lq, lk, dtype=torch.bool) if masked else None
    upstream = torch.randn(3, 4, 2, lq, 16)
    results = {}
    for fast in (False, True):
        for t in (q, k, v):
            t.grad = None
        with fast_layouts(fast), explicit_attention(), torch.autocast("cpu", dtype=dtype,
                                                                       enabled=dtype != torch.float32):
            out = attend(q, k, v, causal=causal, mask=mask)
        (out.float() * upstream).sum().backward()
        results[fast] = (out.detach().float(), [t.grad.clone() for t in (q, k, v)])
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 0.02, "atol": 0.02}
    torch.testing.assert_close(results[True][0], results[False][0], **tol)
    for a, b in zip(results[True][1], results[False][1], strict=True):
        torch.testing.assert_close(a, b, **({"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32
                                            else {"rtol": 0.05, "atol": 0.05}))


def test_switch_is_on_by_default_nests_and_restores():
    assert attention.fast_layouts_enabled()
    with fast_layouts(False):
        assert not attention.fast_layouts_enabled()
        with fast_layouts(True):
            assert attention.fast_layouts_enabled()
        assert not attention.fast_layouts_enabled()
    assert attention.fast_layouts_enabled()


def test_short_key_rows_use_the_transposed_softmax():
    q = torch.randn(2, 3, 1, 25, 16, requires_grad=True)
    k = torch.randn(2, 3, 1, 10, 16, requires_grad=True)
    for fast, dims in ((True, {-2}), (False, {-1})):
        seen = set()

        def spy(scores, dim=-1, _seen=seen):
            _seen.add(dim)
            return scores.softmax(dim=dim, dtype=torch.float32).to(scores.dtype)

        original, attention._softmax = attention._softmax, spy
        try:
            with fast_layouts(fast), explicit_attention():
                attend(q, k, k)
        finally:
            attention._softmax = original
        assert seen == dims


def test_state_dict_capture_and_stepwise_decoding_are_unchanged():
    torch.manual_seed(0)
    model = build_model("stcformer", {"dim": 32}, H36M_SKELETON, 10, 25).eval()
    past = torch.randn(2, 10, 22, 3) * 0.3
    keys = list(model.state_dict())
    with torch.no_grad(), explicit_attention():
        with fast_layouts(False), capture_attention(model) as old_records:
            old = model(past)
        with capture_attention(model) as records:
            fast = model(past)
        stepwise = model.decode_stepwise(past)
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(fast, old, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stepwise, fast, rtol=1e-4, atol=1e-5)
    assert [(r.block, r.kind, r.mode) for r in records] == [(r.block, r.kind, r.mode) for r in old_records]
    for r, o in zip(records, old_records, strict=True):
        torch.testing.assert_close(r.grouped, o.grouped, rtol=1e-5, atol=1e-6)


def test_mask_bias_is_zero_where_allowed_and_minus_inf_elsewhere():
    mask = torch.tensor([[True, False, False], [True, True, False]])
    bias = attention._mask_bias(mask, torch.bfloat16)
    assert bias.dtype == torch.bfloat16
    inf = float("-inf")
    assert bias.float().tolist() == [[0.0, inf, inf], [0.0, 0.0, inf]]


@pytest.mark.parametrize("explicit", [True, False])
def test_attend_scale_by_hand(explicit):
    # One query, two keys, c = 1: scores [0, 1] * scale; with scale 2 the weights are softmax([0, 2]).
    q = torch.ones(1, 1, 1, 1, 1)
    k = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2, 1)
    v = torch.tensor([10.0, 20.0]).view(1, 1, 1, 2, 1)
    w1 = torch.exp(torch.tensor(2.0)) / (1 + torch.exp(torch.tensor(2.0)))
    with explicit_attention(explicit):
        out = attend(q, k, v, scale=2.0)
        default = attend(q, k, v)  # 1 / sqrt(c) = 1
    torch.testing.assert_close(out.flatten(), (10.0 * (1 - w1) + 20.0 * w1).view(1))
    torch.testing.assert_close(default.flatten(), torch.tensor([10.0 / (1 + torch.e) + 20.0 * torch.e / (1 + torch.e)]))


@pytest.mark.parametrize(("dim", "heads", "bitwise"), [(64, 2, True), (48, 2, False)])
def test_queries_scaled_in_the_projection_equal_queries_scaled_after_it(dim, heads, bitwise):
    from crisscross.models.criss_cross import CrissCrossAttention

    torch.manual_seed(0)
    layer = CrissCrossAttention(dim, heads, spe=True)
    x = torch.randn(3, 5, 7, dim)
    c = dim // (2 * heads)
    expected = layer.qkv(x)
    expected = torch.cat((expected[..., :dim] / c**0.5, expected[..., dim:]), dim=-1)
    got = layer._project(layer.qkv, x, scaled=True, norm=None)
    if bitwise:  # c = 16: the factor 1/4 is a power of two
        assert torch.equal(got, expected)
    else:
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
