"""Device-resident lifting samples: the window of ``R`` frames centred on every training frame, gathered by index.

A batch packs each sample's inputs and targets in one tensor ``[B, R, J, 5]``: channels 0:2 are the normalised 2D
keypoints, channels 2:5 the 3D camera-frame pose in metres (root-relative). With ``augment.mirror`` each sample is
flipped horizontally with probability 1/2 (x of both negated, left and right joints swapped), the flip the lifting
literature trains with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crisscross.config.schema import AugmentConfig
from crisscross.data.augment import mirror
from crisscross.data.lifting import LiftingSet

__all__ = ["KEYPOINT_CHANNELS", "LiftingBank"]

KEYPOINT_CHANNELS = 2
_MM_PER_M = 1000.0


@dataclass
class LiftingBank:
    """Every centre frame of one split, with the data on one device."""

    frames: torch.Tensor  # [N, J, 5] keypoints (2) and metres (3)
    dataset: LiftingSet
    receptive_field: int
    mirror_perm: torch.Tensor  # [J] long
    bounds: tuple[torch.Tensor, torch.Tensor]  # first and last frame of every frame's sequence, on the device

    @classmethod
    def from_set(cls, dataset: LiftingSet, receptive_field: int, device: torch.device) -> LiftingBank:
        """All frames of ``dataset`` as samples of ``receptive_field`` frames."""
        if dataset.num_frames == 0:
            raise ValueError(f"no training frame in {dataset.summary()}")
        frames = torch.cat([dataset.keypoints, dataset.positions / _MM_PER_M], dim=-1).to(device)
        perm = torch.as_tensor(dataset.skeleton.mirror_permutation(), dtype=torch.long, device=device)
        bounds = tuple(b.to(device) for b in dataset.frame_bounds())
        return cls(frames=frames, dataset=dataset, receptive_field=receptive_field, mirror_perm=perm, bounds=bounds)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def batch(self, idx: torch.Tensor, augment: AugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
        """Samples centred on frames ``idx``: Tensor[B, R, J, 5]."""
        x = self.frames[self.dataset.window_frames(idx, self.receptive_field, self.bounds)]
        if augment.mirror:
            flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
            flipped = torch.cat([mirror(x[..., :KEYPOINT_CHANNELS], self.mirror_perm),
                                 mirror(x[..., KEYPOINT_CHANNELS:], self.mirror_perm)], dim=-1)
            x = torch.where(flip[:, None, None, None], flipped, x)
        return x
