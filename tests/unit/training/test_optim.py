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
