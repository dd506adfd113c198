"""Batch order and augmentation randomness as pure functions of the seed and the counters, so a resume replays them."""

from __future__ import annotations

import torch

__all__ = ["epoch_permutation", "step_generator"]


def epoch_permutation(num_samples: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The shuffled sample order of ``epoch``: a pure function of (seed, epoch), so a resume replays it."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(num_samples, generator=g).to(device)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator for the augmentation draws of one optimizer step (pure function of seed and step)."""
    return torch.Generator(device=device).manual_seed(int(seed) * 7_919 + int(step) + 1)
