"""Learning-rate schedules as pure functions of the optimizer update count.

``lr_factor(step, total_steps, cfg)`` returns the multiplier of the base rate at update ``step``
(0-based). Defaults follow the video-model training notes: linear warm-up from 0.01x, cosine decay
without restarts ending at 0.01x of the base rate.
"""

from __future__ import annotations

import math

from crisscross.config.schema import SchedConfig

__all__ = ["SCHEDULES", "lr_factor"]


def _warmup(step: int, cfg: SchedConfig) -> float | None:
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        start = cfg.warmup_start_factor
        return start + (1.0 - start) * step / cfg.warmup_steps
    return None


def constant(step: int, total_steps: int, cfg: SchedConfig) -> float:
    """1.0 after the optional warm-up."""
    w = _warmup(step, cfg)
    return 1.0 if w is None else w


def warmup_cosine(step: int, total_steps: int, cfg: SchedConfig) -> float:
    """Linear warm-up, then half a cosine from 1.0 down to ``final_factor`` at ``total_steps``."""
    w = _warmup(step, cfg)
    if w is not None:
        return w
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.final_factor + (1.0 - cfg.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_decay(step: int, total_steps: int, cfg: SchedConfig) -> float:
    """Multiply by ``gamma`` every ``step_size`` updates (after warm-up)."""
    w = _warmup(step, cfg)
    return w if w is not None else cfg.gamma ** (step // cfg.step_size)


def multistep(step: int, total_steps: int, cfg: SchedConfig) -> float:
    """Multiply by ``gamma`` at each update count listed in ``milestones``."""
    w = _warmup(step, cfg)
    return w if w is not None else cfg.gamma ** sum(step >= m for m in cfg.milestones)


SCHEDULES = {"constant": constant, "warmup_cosine": warmup_cosine, "step": step_decay, "multistep": multistep}


def lr_factor(step: int, total_steps: int, cfg: SchedConfig) -> float:
    """The multiplier of the base learning rate at optimizer update ``step``."""
    return SCHEDULES[cfg.name](step, total_steps, cfg)
