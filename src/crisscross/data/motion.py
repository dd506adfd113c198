"""`MotionSet`: every sequence of a dataset split concatenated into one position tensor, with window indexing.

Sequences are stored back to back in ``positions`` (millimetres, float32, root-centred) at the target frame rate.
A window is identified by its *global* start frame; :meth:`MotionSet.train_windows` lists every window lying inside a
single sequence (stride 1 by default, as LTD / HisRepItself / siMLPe train), and :meth:`MotionSet.gather` cuts a batch
of windows with one advanced-indexing operation, without Python work per sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from crisscross.data.skeleton import Skeleton

__all__ = ["MotionSet", "SequenceKey"]


@dataclass(frozen=True, order=True)
class SequenceKey:
    """Identity of one recorded sequence: ``S11 / walking / 1``."""

    subject: str
    action: str
    subaction: int

    def __str__(self) -> str:
        return f"{self.subject}/{self.action}_{self.subaction}"


@dataclass
class MotionSet:
    """Concatenated sequences of one dataset split.

    Attributes:
        positions: Tensor[N, J, 3] float32 joint positions in millimetres, all sequences back to back.
        seq_starts: LongTensor[S] first global frame of each sequence.
        seq_lengths: LongTensor[S] number of frames of each sequence.
        keys: one :class:`SequenceKey` per sequence.
        skeleton: the skeleton of every frame (J joints).
        fps: frame rate of ``positions`` (25 for the literature's H3.6M and CMU protocols).
        dataset: name of the dataset the set was loaded from (``"h36m"``, ``"synthetic"``...).
        split: split name (``"train"``, ``"val"``, ``"test"``...).
        action_order: the dataset's canonical action order, used by :meth:`actions` (``None``: first appearance).
    """

    positions: torch.Tensor
    seq_starts: torch.Tensor
    seq_lengths: torch.Tensor
    keys: list[SequenceKey]
    skeleton: Skeleton
    fps: float
    dataset: str = ""
    split: str = ""
    action_order: tuple[str, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.positions.ndim != 3 or self.positions.shape[1:] != (self.skeleton.num_joints, 3):
            raise ValueError(
                f"positions must be [N, {self.skeleton.num_joints}, 3] for skeleton {self.skeleton.name!r}, "
                f"got {tuple(self.positions.shape)}"
            )
        if not (len(self.keys) == self.seq_starts.numel() == self.seq_lengths.numel()):
            raise ValueError("keys, seq_starts and seq_lengths must have one entry per sequence")
        if self.seq_lengths.numel() and int(self.seq_lengths.sum()) != self.positions.shape[0]:
            raise ValueError("sequence lengths do not add up to the number of frames")

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[np.ndarray | torch.Tensor],
        keys: Sequence[SequenceKey],
        skeleton: Skeleton,
        fps: float,
        dataset: str = "",
        split: str = "",
        action_order: Sequence[str] | None = None,
    ) -> MotionSet:
        """Concatenate per-sequence position arrays.

        Args:
            sequences: one array [T_s, J, 3] (mm) per sequence.
            keys: one key per sequence.
            skeleton: skeleton of the positions.
            fps: frame rate of the positions.
            dataset: dataset name recorded on the set.
            split: split name recorded on the set.
            action_order: canonical action order for :meth:`actions` (default: order of first appearance).
        """
        if len(sequences) != len(keys):
            raise ValueError(f"{len(sequences)} sequences but {len(keys)} keys")
        tensors = [
            s.to(torch.float32) if isinstance(s, torch.Tensor) else torch.from_numpy(np.array(s, dtype=np.float32))
            for s in sequences
        ]
        lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
        starts = torch.cumsum(lengths, 0) - lengths
        positions = torch.cat(tensors, 0) if tensors else torch.zeros(0, skeleton.num_joints, 3)
        order = tuple(action_order) if action_order is not None else None
        return cls(positions, starts, lengths, list(keys), skeleton, float(fps), dataset, split, order)

    @property
    def num_sequences(self) -> int:
        """Number of sequences S."""
        return len(self.keys)

    @property
    def num_frames(self) -> int:
        """Total number of frames N."""
        return int(self.positions.shape[0])

    @property
    def device(self) -> torch.device:
        """Device of :attr:`positions`."""
        return self.positions.device

    def sequence(self, index: int) -> torch.Tensor:
        """Positions of sequence ``index``: Tensor[T_s, J, 3] (a view)."""
        start, length = int(self.seq_starts[index]), int(self.seq_lengths[index])
        return self.positions[start:start + length]

    def actions(self) -> list[str]:
        """Distinct actions present, in the dataset's canonical order (else order of first appearance)."""
        present = list(dict.fromkeys(key.action for key in self.keys))
        if self.action_order is None:
            return present
        ordered = [a for a in self.action_order if a in present]
        return ordered + [a for a in present if a not in ordered]

    def train_windows(self, length: int, stride: int = 1) -> torch.Tensor:
        """Global start frames of every window of ``length`` frames lying inside one sequence.

        Args:
            length: window length in frames (input + output).
            stride: step between consecutive starts within a sequence.

        Returns:
            LongTensor[W] on CPU, sorted; sequences shorter than ``length`` contribute nothing.
        """
        if length < 1 or stride < 1:
            raise ValueError("length and stride must be positive")
        counts = ((self.seq_lengths - length).clamp_min(-1) // stride + 1).clamp_min(0)  # windows per sequence
        total = int(counts.sum())
        if total == 0:
            return torch.zeros(0, dtype=torch.long)
        seq_of_window = torch.repeat_interleave(torch.arange(self.num_sequences), counts)
        first_window = torch.cumsum(counts, 0) - counts
        rank = torch.arange(total) - first_window[seq_of_window]
        return self.seq_starts[seq_of_window] + rank * stride

    def gather(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        """Cut windows by global start frame.

        Args:
            starts: LongTensor[W] global start frames (e.g. from :meth:`train_windows`).
            length: frames per window.

        Returns:
            Tensor[W, length, J, 3] on the device of :attr:`positions`.
        """
        starts = starts.to(device=self.positions.device, dtype=torch.long)
        index = starts[:, None] + torch.arange(length, device=starts.device)[None, :]  # [W, length]
        return self.positions[index]

    def sequence_index_of(self, frames: torch.Tensor) -> torch.Tensor:
        """Sequence containing each global frame: LongTensor[W] -> LongTensor[W]."""
        ends = (self.seq_starts + self.seq_lengths).to(frames.device)
        return torch.searchsorted(ends, frames, right=True)

    def subset(self, actions: Iterable[str] | None = None, subjects: Iterable[str] | None = None) -> MotionSet:
        """A new set holding only the sequences of the given actions and/or subjects.

        Raises:
            ValueError: an action or subject is not present (the message lists those present).
        """
        wanted_actions = None if actions is None else list(actions)
        wanted_subjects = None if subjects is None else list(subjects)
        present_actions = set(self.actions())
        present_subjects = {k.subject for k in self.keys}
        for name, wanted, present in (("action", wanted_actions, present_actions),
                                      ("subject", wanted_subjects, present_subjects)):
            unknown = [w for w in (wanted or []) if w not in present]
            if unknown:
                raise ValueError(f"unknown {name}(s) {unknown}; present: {', '.join(sorted(present))}")
        keep = [
            i for i, key in enumerate(self.keys)
            if (wanted_actions is None or key.action in wanted_actions)
            and (wanted_subjects is None or key.subject in wanted_subjects)
        ]
        return MotionSet.from_sequences(
            [self.sequence(i) for i in keep], [self.keys[i] for i in keep], self.skeleton, self.fps,
            self.dataset, self.split, self.action_order,
        ).to(self.device)

    def to(self, device: torch.device | str) -> MotionSet:
        """The same set with :attr:`positions` on ``device`` (indices stay on CPU)."""
        return MotionSet(self.positions.to(device), self.seq_starts, self.seq_lengths, list(self.keys),
                         self.skeleton, self.fps, self.dataset, self.split, self.action_order)

    def summary(self) -> str:
        """One line: dataset, split, sequences, frames, duration, actions."""
        seconds = self.num_frames / self.fps if self.fps else 0.0
        return (f"{self.dataset or 'motion'}:{self.split or '-'}: {self.num_sequences} sequences, {self.num_frames} "
                f"frames ({seconds / 60:.1f} min at {self.fps:g} fps), {len(self.actions())} actions, "
                f"skeleton {self.skeleton.name} ({self.skeleton.num_joints} joints)")
