"""Device-resident forecasting training windows: windows are gathered by index from one tensor, no per-sample Python.

The whole training set lives on the device as ``positions: Tensor[N, J_full, 3]`` (mm) and the window
start frames as ``starts: LongTensor[W]``. A batch is ``positions[starts[idx, None] + arange(T)]``, then
optional augmentations, then the predicted joints in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crisscross.config.schema import AugmentConfig
from crisscross.data.augment import augment_batch

__all__ = ["WindowBank"]

MM_PER_M = 1000.0


@dataclass
class WindowBank:
    """Training windows of one split, resident on one device."""

    positions: torch.Tensor  # [N, J_full, 3] mm
    starts: torch.Tensor  # [W] long, global first frame of each window
    window: int  # T_in + T_out
    predicted: torch.Tensor  # [J] long, joints the model sees
    mirror_perm: torch.Tensor | None  # [J_full] long, left/right joint permutation
    lateral_axis: int
    vertical_axis: int

    @classmethod
    def from_motion(cls, motion, window: int, stride: int, device: torch.device) -> WindowBank:
        """Build from a ``MotionSet`` (all windows of length ``window`` inside one sequence)."""
        skeleton = motion.skeleton
        starts = motion.train_windows(window, stride=stride)
        if starts.numel() == 0:
            raise ValueError(f"no training window of {window} frames: every sequence is shorter")
        return cls(
            positions=motion.positions.to(device=device, dtype=torch.float32),
            starts=starts.to(device),
            window=window,
            predicted=torch.as_tensor(skeleton.predicted, dtype=torch.long, device=device),
            mirror_perm=torch.as_tensor(skeleton.mirror_permutation(), dtype=torch.long, device=device),
            lateral_axis=skeleton.lateral_axis,
            vertical_axis=skeleton.vertical_axis,
        )

    def __len__(self) -> int:
        return int(self.starts.numel())

    def batch(self, idx: torch.Tensor, augment: AugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
        """Windows ``idx`` (indices into ``starts``) as Tensor[B, T, J, 3] in metres on the predicted joints."""
        frames = self.starts[idx, None] + torch.arange(self.window, device=self.starts.device)  # [B, T]
        x = self.positions[frames]  # [B, T, J_full, 3]
        if augment.rotate or augment.mirror or augment.reverse:
            x = augment_batch(x, generator, rotate=augment.rotate,
                              mirror_permutation=self.mirror_perm if augment.mirror else None,
                              reverse=augment.reverse, vertical_axis=self.vertical_axis,
                              lateral_axis=self.lateral_axis)
        return x[:, :, self.predicted] / MM_PER_M
