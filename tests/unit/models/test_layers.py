"""Shared building blocks: stochastic depth in the residual branch."""

import pytest
import torch

from crisscross.models.layers import ResidualBranch, stochastic_depth_rates
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
