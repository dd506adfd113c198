"""Weight-free lifting references that set the floor of every lifting table; both are fitted to a training split.

* ``mean-pose``: the training set's mean root-relative 3D pose, whatever the input.
* ``nearest-pose``: "2D pose + matching" (Chen and Ramanan, CVPR 2017): the 3D pose of the training frame whose 2D
  pose is nearest to the input's centre frame, both 2D poses centred on the root joint and scaled to unit RMS
  distance from it (so the match ignores where the person stands in the image and how large they appear).

Lifting models map ``keypoints[B, T, J, 2]`` (normalised screen coordinates) to ``[B, T_out, J, 3]`` (metres,
root-relative, camera frame). ``fit(keypoints[N, J, 2], positions[N, J, 3])`` fills their buffers; the lifting task
calls it with the training split.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.registry import register_model

__all__ = ["MeanPoseLifter", "NearestPoseLifter", "normalise_2d"]


def normalise_2d(keypoints: Tensor) -> Tensor:
    """``[..., J, 2] -> [..., J * 2]``: centred on joint 0 and scaled to unit RMS distance from it."""
    centred = keypoints - keypoints[..., :1, :]
    scale = centred.square().sum(-1).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
    return (centred / scale[..., None]).flatten(-2)


class MeanPoseLifter(nn.Module):
    """The training split's mean pose for every input."""

    def __init__(self, num_joints: int, output_frames: int) -> None:
        super().__init__()
        self.output_frames = output_frames
        self.register_buffer("mean_pose", torch.zeros(num_joints, 3))

    def fit(self, keypoints: Tensor, positions: Tensor) -> MeanPoseLifter:
        """Store the mean of ``positions[N, J, 3]`` (metres)."""
        self.mean_pose = positions.float().mean(0).to(self.mean_pose.device)
        return self

    def forward(self, keypoints: Tensor) -> Tensor:
        """``[B, T, J, 2] -> [B, T_out, J, 3]``."""
        return self.mean_pose.expand(keypoints.shape[0], self.output_frames, -1, -1).clone()


class NearestPoseLifter(nn.Module):
    """The 3D pose of the nearest training 2D pose (on at most ``max_poses`` evenly spaced training frames)."""

    def __init__(self, num_joints: int, output_frames: int, max_poses: int = 200_000, chunk: int = 8192) -> None:
        super().__init__()
        self.output_frames, self.max_poses, self.chunk = output_frames, max_poses, chunk
        self.register_buffer("keys", torch.zeros(0, num_joints * 2))
        self.register_buffer("poses", torch.zeros(0, num_joints, 3))

    def fit(self, keypoints: Tensor, positions: Tensor) -> NearestPoseLifter:
        """Index ``keypoints[N, J, 2]`` and keep ``positions[N, J, 3]`` (metres), every ``ceil(N / max_poses)``-th."""
        step = max(1, -(-keypoints.shape[0] // self.max_poses))
        self.keys = normalise_2d(keypoints[::step].float())
        self.poses = positions[::step].float()
        return self

    def forward(self, keypoints: Tensor) -> Tensor:
        """``[B, T, J, 2] -> [B, T_out, J, 3]``: the match of the centre frame, repeated over ``T_out``."""
        if self.keys.shape[0] == 0:
            raise RuntimeError("nearest-pose has not been fitted to a training split")
        query = normalise_2d(keypoints[:, keypoints.shape[1] // 2].float())
        best = torch.full((query.shape[0],), float("inf"), device=query.device)
        index = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        for begin in range(0, self.keys.shape[0], self.chunk):
            dist = torch.cdist(query, self.keys[begin:begin + self.chunk])
            value, arg = dist.min(dim=1)
            better = value < best
            best, index = torch.where(better, value, best), torch.where(better, arg + begin, index)
        return self.poses[index][:, None].expand(-1, self.output_frames, -1, -1).clone()


@register_model("mean-pose", description="Lifting floor: the training split's mean pose", trainable=False,
                task="lifting")
def mean_pose(*, num_joints: int, input_frames: int, output_frames: int,
              graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None
              ) -> MeanPoseLifter:
    """Mean-pose reference."""
    return MeanPoseLifter(num_joints, output_frames)


@register_model("nearest-pose", description="Lifting floor: 2D pose + matching (Chen and Ramanan 2017)",
                trainable=False, task="lifting")
def nearest_pose(*, num_joints: int, input_frames: int, output_frames: int,
                 graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                 max_poses: int = 200_000) -> NearestPoseLifter:
    """Nearest-neighbour reference."""
    return NearestPoseLifter(num_joints, output_frames, max_poses=max_poses)
