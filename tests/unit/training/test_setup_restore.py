"""Restoring a run's state: the EMA resumes averaging instead of restarting as a copy of the raw weights."""

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from crisscross.training.setup import _restore


def _ema(model: nn.Module) -> AveragedModel:
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))


def _checkpoint(ema_updates: int | None) -> dict:
    """A resumable state after 7 updates: raw weight 1.0, EMA weight 3.0 (bias 0 in both)."""
    ckpt = {"model_state": {"weight": torch.ones(1, 1), "bias": torch.zeros(1)},
            "ema_state": {"weight": torch.full((1, 1), 3.0), "bias": torch.zeros(1)},
            "train_state": {"epoch": 1, "step_in_epoch": 7, "step": 7, "best_metric": None, "best_epoch": None,
                            "bad_epochs": 0, "train_time_s": 1.0},
            "rng_cpu": torch.get_rng_state()}
    if ema_updates is not None:
        ckpt["ema_updates"] = ema_updates
    return ckpt


def test_restored_ema_averages_at_the_next_update():
    for saved, expected_count in ((7, 7), (None, 7)):  # with its count, and an older checkpoint without one
        model = nn.Linear(1, 1)
        ema = _ema(model)
        state = _restore(_checkpoint(saved), model, None, torch.amp.GradScaler("cpu", enabled=False), ema)
        assert state.step == 7 and int(ema.n_averaged) == expected_count
        with torch.no_grad():
            model.weight.fill_(2.0)
        ema.update_parameters(model)
        # 0.9 * 3.0 + 0.1 * 2.0 = 2.9; an EMA restarted by the resume would have copied 2.0
        torch.testing.assert_close(ema.module.weight, torch.full((1, 1), 2.9))


def test_a_fresh_ema_copies_the_weights_at_its_first_update():
    model = nn.Linear(1, 1)
    ema = _ema(model)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, torch.full((1, 1), 2.0))
    assert int(ema.n_averaged) == 1
