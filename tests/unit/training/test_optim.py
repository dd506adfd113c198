"""Optimizer factory: no-decay groups, optimizer kinds, gradient clipping."""

import pytest
import torch
import torch.nn as nn

from crisscross.config.schema import OptimConfig
from crisscross.training.optim import create_optimizer, parameter_groups


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.pos_embed = nn.Parameter(torch.zeros(5, 4))

    def no_weight_decay(self):
        return {"pos_embed"}


def test_no_decay_groups():
    model = Tiny()
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    ids = {id(p) for p in no_decay["params"]}
    for p in (model.lin.bias, model.norm.weight, model.norm.bias, model.pos_embed):
        assert id(p) in ids


@pytest.mark.parametrize("cfg, kind", [
    (OptimConfig(name="adam", amsgrad=True), torch.optim.Adam),
    (OptimConfig(name="adamw"), torch.optim.AdamW),
    (OptimConfig(name="sgd"), torch.optim.SGD),
    (OptimConfig(name="sgd", momentum=0.9, nesterov=True), torch.optim.SGD),
])
def test_optimizer_kinds(cfg, kind):
    opt = create_optimizer(Tiny(), cfg)
    assert isinstance(opt, kind)
    if cfg.name == "adam":
        assert opt.defaults["amsgrad"] is True
    if cfg.nesterov:
        assert opt.defaults["nesterov"] is True and opt.defaults["momentum"] == 0.9


def test_clipping_bounds_the_global_norm():
    model = Tiny()
    for p in model.parameters():
        p.grad = torch.full_like(p, 10.0)
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    assert total > 1.0
    after = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    assert after == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("cfg", [
    OptimConfig(name="adam", amsgrad=True, weight_decay=1e-3),
    OptimConfig(name="adamw", weight_decay=1e-2),
    OptimConfig(name="sgd", momentum=0.9, nesterov=True, weight_decay=1e-3),
])
def test_fused_update_matches_the_default_implementation(cfg):
    # The engine uses PyTorch's fused kernel by default; optim.fused=false is PyTorch's default implementation.
    # Both must take the same steps (to float rounding) on the same gradients.
    torch.manual_seed(0)
    a = Tiny()
    b = Tiny()
    b.load_state_dict(a.state_dict())
    start = [p.detach().clone() for p in a.parameters()]
    fused, plain = create_optimizer(a, cfg), create_optimizer(b, OptimConfig(**{**cfg.__dict__, "fused": False}))
    assert fused.defaults["fused"] is True and not plain.defaults.get("fused")
    for _ in range(10):
        grads = [torch.randn_like(p) for p in a.parameters()]
        for model, opt in ((a, fused), (b, plain)):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            opt.step()
    for p, q, p0 in zip(a.parameters(), b.parameters(), start):
        assert not torch.equal(p, p0)  # the updates did move the weights
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_fused_state_resumes_into_the_default_implementation():
    # Checkpoints written before optim.fused existed (default implementation) load into a fused optimizer.
    model = Tiny()
    plain = create_optimizer(model, OptimConfig(name="adam", fused=False))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    plain.step()
    fused = create_optimizer(model, OptimConfig(name="adam"))
    fused.load_state_dict(plain.state_dict())
    fused.step()
    assert float(fused.state_dict()["state"][0]["step"]) == 2.0
