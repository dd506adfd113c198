"""Resuming a run: the EMA resumes averaging instead of restarting as a copy of the raw weights, and a resumed
run's length may change, nothing else."""

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from crisscross.config import load_config
from crisscross.config.schema import ConfigError
from crisscross.training.setup import _check_lengthened_schedule, _restore, resumed_config


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


def test_resumed_config_changes_the_length_only():
    cfg = load_config(None, ["train.epochs=3", "optim.lr=1e-3"])
    longer = resumed_config(cfg, ["train.epochs=5", "train.max_steps=40", "train.time_budget_s=60",
                                  "train.early_stop_patience=2"], "runs/x/1")
    assert (longer.train.epochs, longer.train.max_steps, longer.train.time_budget_s,
            longer.train.early_stop_patience) == (5, 40, 60, 2)
    assert longer.optim == cfg.optim and longer.model == cfg.model and longer.seed == cfg.seed
    for bad in ("optim.lr=1", "train.batch_size=8", "seed=1", "train.ema_decay=0.5"):
        with pytest.raises(ConfigError) as info:
            resumed_config(cfg, [bad], "runs/x/1")
        message = str(info.value)
        assert "\n" not in message and bad in message and "train.init_from=runs/x/1" in message
    with pytest.raises(ConfigError):  # a run length is still validated as such
        resumed_config(cfg, ["train.epochs=-1"], "runs/x/1")


def test_a_schedule_that_decays_over_the_run_refuses_a_new_length():
    constant = load_config(None, ["sched.name=constant", "sched.warmup_steps=5", "train.epochs=2"])
    longer = resumed_config(constant, ["train.epochs=4"], "r")
    assert _check_lengthened_schedule(constant, longer, 20, 10, Path("r")) == 40  # 2 -> 4 epochs of 10 updates
    # a milestone schedule counts updates, not the run's share of them: lengthening keeps every rate
    steps = load_config(None, ["sched.name=multistep", "sched.milestones=[15]", "train.epochs=2"])
    longer = resumed_config(steps, ["train.epochs=9", "train.max_steps=35"], "r")
    assert _check_lengthened_schedule(steps, longer, 20, 10, Path("r")) == 35
    cosine = load_config(None, ["sched.name=warmup_cosine", "sched.warmup_steps=5", "train.epochs=2"])
    # over 20 updates, update 6 has the rate of progress 1/15 along the cosine, over 30 of 1/25
    for done in (12, 20):  # mid-run, and a finished run (its added updates would follow another cosine)
        with pytest.raises(ConfigError, match=rf"warmup_cosine decays .* its {done} updates .* update 6 would"):
            _check_lengthened_schedule(cosine, resumed_config(cosine, ["train.epochs=3"], "r"), done, 10, Path("r"))
    # the same length (another time budget) keeps every rate
    assert _check_lengthened_schedule(cosine, resumed_config(cosine, ["train.time_budget_s=9"], "r"), 20, 10,
                                      Path("r")) == 20
    with pytest.raises(ConfigError, match="has done 20 updates"):
        _check_lengthened_schedule(constant, resumed_config(constant, ["train.max_steps=15"], "r"), 20, 10,
                                   Path("r"))
