"""`LiftingSet`: the 2D keypoints and 3D poses of every sequence of a lifting split, back to back.

One sequence is one recording seen by one camera. Frames are stored back to back: ``keypoints[N, J, 2]`` in
normalised screen coordinates (x in [-1, 1] across the image width, the same scale for y, as VideoPose3D's
``normalize_screen_coordinates``), optional ``confidence[N, J]``, and ``positions[N, J, 3]``: the 3D pose in that
camera's frame, in millimetres, relative to the root joint (whose row is 0). A sample of a lifting model is the
window of ``R`` frames (the receptive field) centred on a frame; at the ends of a sequence the window repeats the
first or last frame, as VideoPose3D pads its inputs (:meth:`LiftingSet.window_frames`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from crisscross.data.skeleton import Skeleton

__all__ = ["LiftingKey", "LiftingSet"]


@dataclass(frozen=True, order=True)
class LiftingKey:
    """Identity of one sequence: subject, action group, take (the rest of the source's action name), camera."""

    subject: str
    action: str
    take: str
    camera: str

    def __str__(self) -> str:
        return f"{self.subject}/{' '.join(p for p in (self.action, self.take) if p)}/{self.camera}"


@dataclass
class LiftingSet:
    """Concatenated sequences of one lifting split.

    Attributes:
        keypoints: Tensor[N, J, 2] float32 normalised screen coordinates.
        positions: Tensor[N, J, 3] float32 camera-frame positions in millimetres, root joint at 0.
        seq_starts: LongTensor[S] first global frame of each sequence.
        seq_lengths: LongTensor[S] frames of each sequence.
        keys: one :class:`LiftingKey` per sequence.
        skeleton: the keypoint layout (J joints).
        fps: frame rate.
        dataset: the dataset's registry name.
        split: the split name.
        confidence: Tensor[N, J] per-keypoint confidence in [0, 1], or ``None`` (ground-truth 2D).
        root: Tensor[N, 3] the root joint's camera-frame position in millimetres (its distance from the camera),
            or ``None``.
        source: where the split was read from (``data_dir``, ``cache_dir``), so the training split of the same
            data can be found again (the weight-free reference rows need it).
    """

    keypoints: torch.Tensor
    positions: torch.Tensor
    seq_starts: torch.Tensor
    seq_lengths: torch.Tensor
    keys: list[LiftingKey]
    skeleton: Skeleton
    fps: float
    dataset: str = ""
    split: str = ""
    confidence: torch.Tensor | None = None
    root: torch.Tensor | None = None
    source: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        joints = self.skeleton.num_joints
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (joints, 2):
            raise ValueError(f"keypoints must be [N, {joints}, 2], got {tuple(self.keypoints.shape)}")
        if self.positions.shape != (self.keypoints.shape[0], joints, 3):
            raise ValueError(f"positions must be [N, {joints}, 3] like the keypoints, "
                             f"got {tuple(self.positions.shape)}")
        if self.confidence is not None and self.confidence.shape != self.keypoints.shape[:2]:
            raise ValueError(f"confidence must be [N, {joints}], got {tuple(self.confidence.shape)}")
        if not (len(self.keys) == self.seq_starts.numel() == self.seq_lengths.numel()):
            raise ValueError("keys, seq_starts and seq_lengths must have one entry per sequence")
        if int(self.seq_lengths.sum()) != self.keypoints.shape[0]:
            raise ValueError("sequence lengths do not add up to the number of frames")

    @classmethod
    def from_sequences(cls, keypoints: Sequence[np.ndarray | torch.Tensor],
                       positions: Sequence[np.ndarray | torch.Tensor], keys: Sequence[LiftingKey], skeleton: Skeleton,
                       fps: float, *, dataset: str = "", split: str = "",
                       confidence: Sequence[np.ndarray | torch.Tensor] | None = None,
                       source: dict[str, str | None] | None = None) -> LiftingSet:
        """Concatenate per-sequence arrays ``keypoints[i]: [T_i, J, 2]`` and ``positions[i]: [T_i, J, 3]`` (mm).

        Positions are made root-relative here (joint 0 subtracted), whatever the caller passes.
        """
        if not (len(keypoints) == len(positions) == len(keys)):
            raise ValueError("one keypoint array, one position array and one key per sequence")
        lengths = [len(k) for k in keypoints]
        if any(len(p) != n for p, n in zip(positions, lengths)):
            raise ValueError("each sequence needs as many 3D frames as 2D frames")

        def cat(arrays: Sequence[np.ndarray | torch.Tensor], tail: tuple[int, ...]) -> torch.Tensor:
            if not arrays:
                return torch.zeros((0, *tail))
            return torch.cat([torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in arrays])

        joints = skeleton.num_joints
        pos = cat(positions, (joints, 3))
        root = pos[:, 0].clone()
        pos = pos - pos[:, :1]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths else np.zeros(0)
        return cls(keypoints=cat(keypoints, (joints, 2)), positions=pos,
                   seq_starts=torch.as_tensor(starts, dtype=torch.long),
                   seq_lengths=torch.as_tensor(lengths, dtype=torch.long), keys=list(keys), skeleton=skeleton,
                   fps=float(fps), dataset=dataset, split=split,
                   confidence=cat(confidence, (joints,)) if confidence is not None else None, root=root,
                   source=dict(source or {}))

    @property
    def num_frames(self) -> int:
        """Frames over every sequence (the number of samples: one per centre frame)."""
        return int(self.keypoints.shape[0])

    def actions(self) -> list[str]:
        """Action groups in order of first appearance."""
        return list(dict.fromkeys(k.action for k in self.keys))

    def subjects(self) -> list[str]:
        """Subjects in order of first appearance."""
        return list(dict.fromkeys(k.subject for k in self.keys))

    def frame_sequence(self) -> torch.Tensor:
        """LongTensor[N]: the sequence index of every frame."""
        return torch.repeat_interleave(torch.arange(len(self.keys)), self.seq_lengths)

    def frame_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(first, last)``: LongTensor[N] each, the first and last global frame of every frame's sequence."""
        seq = self.frame_sequence()
        first = self.seq_starts[seq]
        return first, first + self.seq_lengths[seq] - 1

    def window_frames(self, centres: torch.Tensor, receptive_field: int,
                      bounds: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Global frame indices of the windows centred on ``centres`` (LongTensor[B]): LongTensor[B, R].

        ``R`` must be odd; frames before a sequence's start or after its end repeat its first or last frame.
        ``bounds``: :meth:`frame_bounds` computed once (on ``centres``' device) by callers that cut many batches.
        """
        if receptive_field < 1 or receptive_field % 2 == 0:
            raise ValueError(f"the receptive field must be a positive odd number of frames, got {receptive_field}")
        first, last = bounds if bounds is not None else (b.to(centres.device) for b in self.frame_bounds())
        half = receptive_field // 2
        offsets = torch.arange(-half, half + 1, device=centres.device)
        return torch.minimum(torch.maximum(centres[:, None] + offsets, first[centres, None]), last[centres, None])

    def subset(self, *, actions: Iterable[str] | None = None, subjects: Iterable[str] | None = None,
               cameras: Iterable[str] | None = None) -> LiftingSet:
        """The sequences whose action group, subject and camera are among those given (``None``: any)."""
        wanted = {"action": set(actions) if actions is not None else None,
                  "subject": set(subjects) if subjects is not None else None,
                  "camera": set(cameras) if cameras is not None else None}
        chosen = [i for i, k in enumerate(self.keys)
                  if all(allowed is None or getattr(k, name) in allowed for name, allowed in wanted.items())]
        frames = [torch.arange(int(self.seq_starts[i]), int(self.seq_starts[i] + self.seq_lengths[i])) for i in chosen]
        index = torch.cat(frames) if frames else torch.zeros(0, dtype=torch.long)
        lengths = self.seq_lengths[chosen] if chosen else torch.zeros(0, dtype=torch.long)
        starts = torch.cumsum(lengths, 0) - lengths
        return replace(self, keypoints=self.keypoints[index], positions=self.positions[index],
                       confidence=self.confidence[index] if self.confidence is not None else None,
                       root=self.root[index] if self.root is not None else None,
                       seq_starts=starts, seq_lengths=lengths, keys=[self.keys[i] for i in chosen])

    def summary(self) -> str:
        """One line: dataset, split, sequences, frames, subjects and actions."""
        return (f"{self.dataset or 'lifting data'} / {self.split or '?'}: {len(self.keys)} sequences, "
                f"{self.num_frames} frames, subjects {', '.join(self.subjects())}, "
                f"actions {', '.join(self.actions())}")
