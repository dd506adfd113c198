"""Schedules at hand-computed steps."""

import math

import pytest

from crisscross.config.schema import SchedConfig
from crisscross.training.schedule import lr_factor


def test_warmup_cosine_values():
    cfg = SchedConfig(name="warmup_cosine", warmup_steps=10, warmup_start_factor=0.01, final_factor=0.01)
    assert lr_factor(0, 110, cfg) == pytest.approx(0.01)
    assert lr_factor(5, 110, cfg) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10, 110, cfg) == pytest.approx(1.0)
    # half-way through the cosine: 0.01 + 0.99 * 0.5 * (1 + cos(pi / 2))
    assert lr_factor(60, 110, cfg) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(110, 110, cfg) == pytest.approx(0.01)
    assert lr_factor(35, 110, cfg) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.25)))


def test_constant_step_multistep():
    assert lr_factor(1000, 10, SchedConfig(name="constant")) == 1.0
    step = SchedConfig(name="step", step_size=20, gamma=0.5)
    assert [lr_factor(s, 100, step) for s in (0, 19, 20, 40, 59)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    multi = SchedConfig(name="multistep", milestones=(20, 40), gamma=0.1)
    assert [lr_factor(s, 100, multi) for s in (0, 20, 39, 40)] == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_schedule_config_validation():
    from crisscross.config import ConfigError

    with pytest.raises(ConfigError, match="sched.step_size"):
        SchedConfig(name="step")
    with pytest.raises(ConfigError, match="sched.milestones"):
        SchedConfig(name="multistep")
