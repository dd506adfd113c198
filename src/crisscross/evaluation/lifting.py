"""Score a 2D-to-3D lifter on every frame of a split, as the lifting literature does (VideoPose3D ``run.py``).

1. Every frame of every test sequence is a sample (or every ``frame_stride``-th, from each sequence's first); the
   lifter sees the ``receptive_field`` frames centred on it (the ends of a sequence repeat its first or last frame)
   and returns the centre frame's 3D pose.
2. With test-time flip augmentation (on by default, as in the literature) the lifter also sees the horizontally
   flipped input (x negated, left and right joints swapped); its output is flipped back and the two are averaged.
3. Poses are root-relative: the predicted root is subtracted (VideoPose3D zeroes joint 0 of both poses).
4. Per frame: MPJPE (protocol 1), P-MPJPE (protocol 2, after a similarity alignment), N-MPJPE (after the best
   scale); per pair of consecutive frames of a sequence: MPJVE (NaN when the protocol scores every ``s``-th frame).
   Each is averaged over the frames of an action group (the action's name before its take number) and the headline
   figure is the unweighted mean over action groups.
   HumanEva-I is also reported per subject and action.

All figures are millimetres. This module does no printing; tables live with the task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from crisscross.data.augment import mirror
from crisscross.data.lifting import LiftingSet
from crisscross.evaluation.metrics import get_metric
from crisscross.evaluation.protocols import LiftingProtocol

__all__ = ["LIFTING_METRICS", "LiftFn", "evaluate_lifter", "flip_averaged", "scored_frames"]

#: ``lift(keypoints: Tensor[B, R, J, 2]) -> Tensor[B, J, 3]``: the centre frame's pose in millimetres.
LiftFn = Callable[[torch.Tensor], torch.Tensor]

#: Result keys and the registered metric behind each: per-frame pose errors, and the velocity error.
LIFTING_METRICS: dict[str, str] = {"mpjpe_mm": "mpjpe", "p_mpjpe_mm": "p_mpjpe", "n_mpjpe_mm": "n_mpjpe"}
VELOCITY_KEY = "mpjve_mm"


def flip_averaged(lift: LiftFn, permutation: Sequence[int]) -> LiftFn:
    """``lift`` with test-time flip augmentation: the mean of ``lift(x)`` and the flipped-back ``lift(flip(x))``."""

    def averaged(keypoints: torch.Tensor) -> torch.Tensor:
        direct = lift(keypoints)
        flipped = mirror(lift(mirror(keypoints, permutation)), permutation)
        return (direct + flipped) / 2

    return averaged


def scored_frames(dataset: LiftingSet, frame_stride: int = 1) -> torch.Tensor:
    """LongTensor[N_scored]: the global index of every ``frame_stride``-th frame of each sequence, from its first."""
    offset = torch.arange(dataset.num_frames) - dataset.seq_starts[dataset.frame_sequence()]
    return torch.nonzero(offset % frame_stride == 0).flatten()


def _predict(lift: LiftFn, dataset: LiftingSet, centres: torch.Tensor, receptive_field: int,
             device: torch.device | str, batch_size: int) -> torch.Tensor:
    """Tensor[N, J, 3]: the root-relative prediction for the frames ``centres`` (LongTensor[N]) of ``dataset``."""
    keypoints = dataset.keypoints.to(device)
    bounds = tuple(b.to(device) for b in dataset.frame_bounds())
    centres = centres.to(device)
    out = []
    for begin in range(0, centres.numel(), batch_size):
        chunk = centres[begin:begin + batch_size]
        pred = lift(keypoints[dataset.window_frames(chunk, receptive_field, bounds)]).float()
        if pred.shape != (chunk.numel(), *dataset.positions.shape[1:]):
            raise ValueError(f"the lifter returned {tuple(pred.shape)}, expected "
                             f"{(chunk.numel(), *dataset.positions.shape[1:])} ([B, J, 3] in mm)")
        out.append(pred - pred[:, :1])
    return torch.cat(out) if out else dataset.positions.new_zeros((0, *dataset.positions.shape[1:]))


def _frame_errors(pred: torch.Tensor, dataset: LiftingSet, centres: torch.Tensor,
                  consecutive: bool) -> dict[str, torch.Tensor]:
    """Per-scored-frame errors ``{key: Tensor[N]}``; the velocity error is NaN at a sequence's first frame, and
    everywhere unless ``consecutive`` (every frame of every sequence scored)."""
    target = dataset.positions[centres.cpu()].to(pred.device)
    errors = {key: get_metric(name).fn(pred, target).double() for key, name in LIFTING_METRICS.items()}
    velocity = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64, device=pred.device)
    if consecutive:
        for start, length in zip(dataset.seq_starts.tolist(), dataset.seq_lengths.tolist()):
            if length > 1:
                frames = slice(start, start + length)
                velocity[start + 1:start + length] = get_metric("mpjve").fn(pred[frames], target[frames]).double()
    errors[VELOCITY_KEY] = velocity
    return errors


def _group_means(errors: dict[str, torch.Tensor], groups: torch.Tensor, names: list[str]) -> dict[str, dict]:
    """``{key: {"mean": mean over groups, "per_action": {name: mean over its frames}}}`` (NaNs skipped)."""
    result = {}
    for key, values in errors.items():
        per = {}
        for g, name in enumerate(names):
            chosen = values[(groups == g) & ~values.isnan()]
            per[name] = float(chosen.mean()) if chosen.numel() else float("nan")
        finite = [v for v in per.values() if v == v]
        result[key] = {"mean": sum(finite) / len(finite) if finite else float("nan"), "per_action": per}
    return result


def evaluate_lifter(lift: LiftFn, dataset: LiftingSet, protocol: LiftingProtocol, *, device: torch.device | str = "cpu",
                    batch_size: int = 1024, flip: bool = True, actions: Sequence[str] | None = None) -> dict:
    """Evaluate ``lift`` on every frame (or every ``protocol.frame_stride``-th) of ``dataset`` under ``protocol``.

    Args:
        lift: ``Tensor[B, R, J, 2]`` normalised keypoints -> ``Tensor[B, J, 3]`` centre-frame pose (mm).
        dataset: the evaluated split.
        protocol: receptive field, scored action groups and per-subject reporting.
        device: where windows are gathered and errors computed.
        batch_size: frames per ``lift`` call.
        flip: test-time flip augmentation.
        actions: score only these action groups (default: the protocol's, else every group of the split).

    Returns:
        A JSON-serialisable dict: ``protocol``, ``protocol_version``, ``dataset``, ``split``, ``receptive_field``,
        ``flip``, ``actions``, ``frame_stride``, ``num_frames`` (scored), ``num_frames_per_action``, ``joints``,
        and for each of ``mpjpe_mm``
        (P1), ``p_mpjpe_mm`` (P2), ``n_mpjpe_mm`` and ``mpjve_mm``: ``{"mean": .., "per_action": {..}}``; with
        ``protocol.by_subject`` also ``per_subject: {subject: {key: {"mean": .., "per_action": {..}}}}``.

    Raises:
        ValueError: no frame to score, or the lifter returned a wrongly shaped tensor.
    """
    wanted = actions or protocol.actions or None
    if wanted is not None:
        dataset = dataset.subset(actions=wanted)
    if dataset.num_frames == 0:
        raise ValueError(f"protocol {protocol.name!r} finds no frame to score in {dataset.summary()}")
    scored = flip_averaged(lift, dataset.skeleton.mirror_permutation()) if flip else lift
    stride = protocol.frame_stride
    centres = scored_frames(dataset, stride)
    with torch.no_grad():
        pred = _predict(scored, dataset, centres, protocol.receptive_field, device, batch_size)
        errors = _frame_errors(pred, dataset, centres, consecutive=stride == 1)
    names = dataset.actions()
    seq_group = torch.tensor([names.index(k.action) for k in dataset.keys], dtype=torch.long)
    groups = seq_group[dataset.frame_sequence()[centres]].to(pred.device)
    result: dict = {
        "protocol": protocol.name, "protocol_version": protocol.version, "dataset": dataset.dataset,
        "split": dataset.split, "receptive_field": protocol.receptive_field, "input_frames": protocol.input_frames,
        "output_frames": protocol.output_frames, "flip": flip, "actions": names, "frame_stride": stride,
        "num_frames": int(centres.numel()),
        "num_frames_per_action": {n: int((groups == g).sum()) for g, n in enumerate(names)},
        "joints": dataset.skeleton.num_joints,
        **_group_means(errors, groups, names),
    }
    if protocol.by_subject:
        seq_subject = [k.subject for k in dataset.keys]
        result["per_subject"] = {}
        for subject in dataset.subjects():
            mask = torch.tensor([s == subject for s in seq_subject])[dataset.frame_sequence()[centres]]
            mask = mask.to(groups.device)
            result["per_subject"][subject] = _group_means({k: v[mask] for k, v in errors.items()}, groups[mask],
                                                          names)
    return result
