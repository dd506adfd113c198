"""Shared building blocks: stochastic depth in the residual branch, the linear with its bias in the GEMM."""

import pytest
import torch
import torch.nn.functional as F

from crisscross.models import layers
from crisscross.models.attention import fast_layouts
from crisscross.models.layers import Linear, ResidualBranch, linear, stochastic_depth_rates
from crisscross.models.registry import create_model


def _branch(x):
    return 2.0 * x + 1.0


@pytest.mark.parametrize("norm", ["pre", "post", "sandwich"])
def test_drop_path_is_the_identity_in_eval_mode(norm):
    torch.manual_seed(0)
    x = torch.randn(8, 5, 22, 16)
    plain, dropping = ResidualBranch(16, norm), ResidualBranch(16, norm, drop_path=0.5)
    dropping.load_state_dict(plain.state_dict())
    plain.eval(), dropping.eval()
    assert torch.equal(plain(x, _branch), dropping(x, _branch))


def test_drop_path_drops_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.randn(4000, 3, 2, 8)
    res = ResidualBranch(8, "sandwich", drop_path=0.25).train()
    with torch.no_grad():
        out = res(x, _branch)
        full = x + res.norm_out(_branch(res.norm_in(x)))  # the branch kept, unscaled
    delta = (out - x).flatten(1)
    branch = (full - x).flatten(1)
    dropped = delta.abs().amax(dim=1) == 0
    # Each sample either skips the branch entirely or takes all of it scaled by 1 / (1 - p) = 4/3.
    torch.testing.assert_close(delta[~dropped], branch[~dropped] * (4 / 3), rtol=1e-5, atol=1e-6)
    assert 0.22 < dropped.float().mean().item() < 0.28  # p = 0.25 over 4000 samples (6 standard deviations)
    # Gradients reach the branch only through the kept samples, scaled like the forward: for a branch w * 1 over
    # [B, 3], d(sum of outputs)/dw = (kept samples) * 3 * 4/3.
    w = torch.tensor(0.5, requires_grad=True)
    base = torch.zeros(4000, 3)
    out = res._add(base, w * torch.ones(4000, 3))
    out.sum().backward()
    kept = (out.detach().abs().amax(dim=1) > 0).sum().item()
    assert w.grad.item() == pytest.approx(kept * 3 * 4 / 3, rel=1e-5)


def test_stochastic_depth_rates_rise_linearly_from_zero():
    assert stochastic_depth_rates(0.3, 4) == pytest.approx((0.0, 0.1, 0.2, 0.3))
    assert stochastic_depth_rates(0.2, 1) == (0.2,)
    with pytest.raises(ValueError, match="drop_path must be in"):
        ResidualBranch(8, "pre", drop_path=1.0)


@pytest.mark.parametrize("name", ["stcformer", "stcformer-ar"])
def test_stcformer_drop_path_keeps_checkpoints_and_eval_outputs(name):
    # drop_path adds no parameters: a checkpoint trained with it loads into a model without it, and in eval
    # mode both compute the same function.
    torch.manual_seed(0)
    kwargs = dict(num_joints=22, input_frames=10, output_frames=25, dim=32)
    with_dp = create_model(name, drop_path=0.3, **kwargs)
    without = create_model(name, **kwargs)
    without.load_state_dict(with_dp.state_dict())
    rates = [b.res_mlp.drop_path for b in (*with_dp.encoder.blocks, *with_dp.decoder.blocks)]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    past = torch.randn(3, 10, 22, 3)
    with_dp.eval(), without.eval()
    assert torch.equal(with_dp(past), without(past))


needs_mkldnn_linear = pytest.mark.skipif(not layers._mkldnn_linear_available(), reason="no oneDNN linear in this build")


def _linear_and_grads(fn, x, w, b, autocast):
    x, w, b = (t.detach().clone().requires_grad_() for t in (x, w, b))
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        y = fn(x, w, b)
    upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
    (y * upstream).float().sum().backward()
    return y.grad_fn.name(), [y.detach(), x.grad, w.grad, b.grad]


@needs_mkldnn_linear
@pytest.mark.parametrize("autocast", [True, False], ids=["fp32-params-under-autocast", "bf16-tensors"])
def test_linear_adds_the_bias_in_the_gemm_with_f_linear_numbers_bitwise(autocast):
    gen = torch.Generator().manual_seed(0)
    dtype = torch.float32 if autocast else torch.bfloat16
    x = torch.randn(3, 5, 7, 64, generator=gen).to(dtype)  # [B, T, J, C_in]
    w, b = torch.randn(48, 64, generator=gen).to(dtype), torch.randn(48, generator=gen).to(dtype)
    node, got = _linear_and_grads(linear, x, w, b, autocast)
    ref_node, ref = _linear_and_grads(F.linear, x, w, b, autocast)
    assert node == "_EpilogueLinearBackward" and ref_node != node
    for name, a, r in zip(("output", "x", "weight", "bias"), got, ref):
        assert a.dtype == r.dtype and a.shape == r.shape, name
        assert torch.equal(a, r), name


@pytest.mark.parametrize("case", ["fp32", "no_grad", "plain_layouts", "no_bias"])
def test_linear_falls_back_to_f_linear(case):
    x, w, b = torch.randn(2, 6, 16), torch.randn(8, 16), torch.randn(8)
    autocast = case != "fp32"
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast), fast_layouts(case != "plain_layouts"), \
            torch.set_grad_enabled(case != "no_grad"):
        x.requires_grad_(case != "no_grad")
        y = linear(x, w, None if case == "no_bias" else b)
        ref = F.linear(x, w, None if case == "no_bias" else b)
    assert torch.equal(y, ref)
    assert y.grad_fn is None or y.grad_fn.name() != "_EpilogueLinearBackward"


def test_linear_module_keeps_nn_linear_parameters_and_state_dict():
    torch.manual_seed(0)
    plain = torch.nn.Linear(16, 8)
    ours = Linear(16, 8)
    ours.load_state_dict(plain.state_dict())
    assert isinstance(ours, torch.nn.Linear) and list(ours.state_dict()) == list(plain.state_dict())
    x = torch.randn(4, 16)
    assert torch.equal(ours(x), plain(x))


def _fold_inputs(gen):
    x = torch.randn(3, 5, 7, 64, generator=gen) * 2 + 0.5  # [B, T, J, C_in], off-centre rows
    norm = torch.nn.LayerNorm(64)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.3 * torch.randn(64, generator=gen))
        norm.bias.copy_(0.2 * torch.randn(64, generator=gen))
    layer = torch.nn.Linear(64, 48)
    return x, norm, layer


def _normed_and_grads(x, norm, layer, fold, autocast=True):
    x = x.detach().clone().requires_grad_()
    for p in (*norm.parameters(), *layer.parameters()):
        p.grad = None
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        y = layers.normed_linear(x, norm, layer.weight, layer.bias) if fold else layer(norm(x))
    upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    (y.float() * upstream).sum().backward()
    return [y.detach().double(), x.grad.double(), *(p.grad.double() for p in (norm.weight, norm.bias,
                                                                               layer.weight, layer.bias))]


@needs_mkldnn_linear
def test_normed_linear_folds_the_layernorm_affine_and_is_as_accurate(monkeypatch):
    """The fold runs (a LayerNorm without affine), and its output and every gradient are as close to fp64 as the
    unfolded bf16 computation's: the same function, rounded differently."""
    x, norm, layer = _fold_inputs(torch.Generator().manual_seed(0))
    seen = []
    layer_norm = F.layer_norm
    monkeypatch.setattr(F, "layer_norm", lambda *a, **k: seen.append(a[2]) or layer_norm(*a, **k))
    folded = _normed_and_grads(x, norm, layer, fold=True)
    assert seen == [None]
    unfolded = _normed_and_grads(x, norm, layer, fold=False)
    exact = _normed_and_grads(x.double(), norm.double(), layer.double(), fold=False, autocast=False)
    norm.float(), layer.float()
    for name, f, u, e in zip(("output", "x", "gamma", "beta", "weight", "bias"), folded, unfolded, exact):
        err_f, err_u = (f - e).norm() / e.norm(), (u - e).norm() / e.norm()
        assert err_f < 2 * err_u + 1e-3, (name, err_f.item(), err_u.item())
        assert err_f < 0.01, name


@pytest.mark.parametrize("case", ["fp32", "no_grad", "plain_layouts", "no_affine"])
def test_normed_linear_is_exactly_norm_then_linear_elsewhere(case):
    x, norm, layer = _fold_inputs(torch.Generator().manual_seed(0))
    if case == "no_affine":
        norm = torch.nn.LayerNorm(64, elementwise_affine=False)
    with torch.autocast("cpu", torch.bfloat16, enabled=case != "fp32"), fast_layouts(case != "plain_layouts"), \
            torch.set_grad_enabled(case != "no_grad"):
        got = layers.normed_linear(x, norm, layer.weight, layer.bias)
        ref = linear(norm(x), layer.weight, layer.bias)
    assert torch.equal(got, ref)


def test_normed_linear_without_a_norm_is_linear():
    x, _, layer = _fold_inputs(torch.Generator().manual_seed(0))
    for norm in (None, torch.nn.Identity()):
        assert torch.equal(layers.normed_linear(x, norm, layer.weight, layer.bias), layer(x))


@needs_mkldnn_linear
def test_linear_add_adds_the_residual_in_the_gemm():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, 64, generator=gen).bfloat16().requires_grad_()
    w = (torch.randn(48, 64, generator=gen) * 0.1).requires_grad_()
    b = torch.randn(48, generator=gen).requires_grad_()
    residual = torch.randn(3, 5, 7, 48, generator=gen).bfloat16().requires_grad_()
    upstream = torch.randn(3, 5, 7, 48, generator=gen)
    results = []
    for fn in (layers.linear_add, lambda *a: a[3] + linear(*a[:3])):
        for t in (x, w, b, residual):
            t.grad = None
        with torch.autocast("cpu", torch.bfloat16):
            y = fn(x, w, b, residual)
        (y.float() * upstream).sum().backward()
        results.append((y.grad_fn.name(), y.detach(), [t.grad.clone() for t in (x, w, b, residual)]))
    (node, y, grads), (_, ref_y, ref_grads) = results
    assert node == "_EpilogueLinearAddBackward" and y.dtype == torch.bfloat16
    exact = residual.double() + x.double() @ w.double().T + b.double()
    assert (y.double() - exact).abs().mean() <= (ref_y.double() - exact).abs().mean()  # rounded once, not twice
    torch.testing.assert_close(y.float(), ref_y.float(), rtol=0.01, atol=0.02)
    assert torch.equal(grads[3], upstream.bfloat16())  # the residual's gradient is the upstream one
    for got, ref in zip(grads[:3], ref_grads[:3]):
        assert torch.equal(got, ref)  # the same products of the same upstream gradient


@pytest.mark.parametrize("case", ["fp32", "no_grad", "plain_layouts", "fp32_residual", "no_bias"])
def test_linear_add_falls_back_to_residual_plus_linear(case):
    x, w, b = torch.randn(2, 6, 16), torch.randn(8, 16), torch.randn(8)
    residual = torch.randn(2, 6, 8)
    if case not in ("fp32", "fp32_residual"):
        residual = residual.bfloat16()
    bias = None if case == "no_bias" else b
    with torch.autocast("cpu", torch.bfloat16, enabled=case != "fp32"), fast_layouts(case != "plain_layouts"), \
            torch.set_grad_enabled(case != "no_grad"):
        x.requires_grad_(case != "no_grad")
        y = layers.linear_add(x, w, bias, residual)
        ref = residual + F.linear(x, w, bias)
    assert torch.equal(y, ref)
    assert y.grad_fn is None or y.grad_fn.name() != "_EpilogueLinearAddBackward"


@pytest.mark.parametrize("norm", ["pre", "post", "sandwich"])
@pytest.mark.parametrize("drop_path", [0.0, 0.2])
def test_residual_branch_with_a_norm_taking_sub_layer_matches_the_plain_call(norm, drop_path):
    """Evaluation and fp32 training: bitwise the plain call; bf16 training on a CPU: the same to bf16 rounding."""
    torch.manual_seed(0)
    branch = ResidualBranch(16, norm, drop_path)
    ff = layers.FeedForward(16, 32)
    x = torch.randn(4, 5, 22, 16)
    for training, autocast in ((False, True), (True, False), (True, True)):
        branch.train(training)
        ff.train(training)
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            torch.manual_seed(1)
            got = branch(x, ff, fn_takes_norm=True)
            torch.manual_seed(1)
            ref = branch(x, ff)
        if autocast and training:
            torch.testing.assert_close(got.float(), ref.float(), rtol=0.02, atol=0.02)
        else:
            assert torch.equal(got, ref)
