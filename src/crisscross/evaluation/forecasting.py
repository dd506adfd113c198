"""Score a forecaster on a protocol's windows: per horizon, per action, mean over actions, both joint averagings.

Follows the literature's evaluation (LTD ``main_3d.py``, HisRepItself ``main_h36m_3d_eval.py``, siMLPe ``test.py``):

1. the prediction of the full skeleton starts from the ground truth of the window
   (``pred_3d = all_seq.clone()``) and the model's output replaces the predicted joints (``pred_3d[:, :, dim_used]``);
   so the joints that are neither predicted nor copies (H3.6M 0, 1, 6, 11, constant once global motion is removed)
   carry the ground-truth future and score zero error;
2. the duplicated joints are filled from their sources (``pred_3d[:, :, index_to_ignore] = ...[index_to_equal]``);
3. MPJPE per future frame is the mean over the joints of the L2 distance, averaged over the windows of an action;
   the reported figure is the unweighted mean over actions (HisRepItself). ``avg`` is the mean over all output frames.

``mpjpe32_mm`` averages over every joint of the skeleton (the literature's number: 32 joints for H3.6M, 38 for CMU);
``mpjpe22_mm`` averages over the predicted joints only (22 for H3.6M, 25 for CMU); ``joint_counts`` in the result
records the actual counts. This module does no printing; tables live with the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from crisscross.data.motion import MotionSet
from crisscross.data.skeleton import Skeleton
from crisscross.evaluation.metrics import get_metric
from crisscross.evaluation.protocols import ForecastProtocol, protocol_windows

__all__ = [
    "FULL_JOINTS_KEY",
    "PREDICTED_JOINTS_KEY",
    "PredictFn",
    "evaluate_forecaster",
    "make_predict_fn",
    "zero_velocity_predict_fn",
]

FULL_JOINTS_KEY = "mpjpe32_mm"
PREDICTED_JOINTS_KEY = "mpjpe22_mm"
_MM_PER_M = 1000.0

#: ``predict_fn(past_mm: Tensor[B, T_in, J_full, 3]) -> Tensor[B, T_out, J_full, 3]`` (millimetres).
PredictFn = Callable[[torch.Tensor], torch.Tensor]


def _fill_derived_joints(full: torch.Tensor, skeleton: Skeleton) -> None:
    """Copy each duplicated joint from its source, in place: Tensor[B, T, J, 3]."""
    if skeleton.copies:
        full[:, :, list(skeleton.copy_destinations())] = full[:, :, list(skeleton.copy_sources())]


def make_predict_fn(model: nn.Module, skeleton: Skeleton, output_frames: int | None = None) -> PredictFn:
    """Wrap a model (metres, predicted joints) as a full-skeleton millimetre ``predict_fn``.

    The returned function selects the predicted joints of the observed frames, converts mm -> m, runs the model in
    eval mode under ``torch.no_grad()`` (restoring its train/eval mode afterwards), converts back to mm and builds the
    full skeleton: predicted joints from the model, copies from their source joints, every other joint from the last
    observed frame (those are constant in the literature's data; :func:`evaluate_forecaster` replaces them by the
    ground-truth future anyway, exactly as the literature does).

    Args:
        model: maps Tensor[B, T_in, J_pred, 3] (m) to Tensor[B, T_step, J_pred, 3] (m).
        skeleton: the data's skeleton; ``skeleton.predicted`` selects the model's joints.
        output_frames: frames to return. When larger than the model's ``T_step``, the model is rolled out
            autoregressively (its predictions are appended to the input window, which keeps its last ``T_in``
            frames), as HisRepItself and siMLPe do to reach 25 frames; ``None`` returns one model call.

    Returns:
        ``predict_fn(past_mm: Tensor[B, T_in, J_full, 3]) -> Tensor[B, T_out, J_full, 3]`` (float32, mm).
    """
    predicted = list(skeleton.predicted)

    def predict(past_mm: torch.Tensor) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                window = past_mm[:, :, predicted].float() / _MM_PER_M
                input_len = window.shape[1]
                steps: list[torch.Tensor] = []
                produced = 0
                while True:
                    step = model(window).float()
                    steps.append(step)
                    produced += step.shape[1]
                    if output_frames is None or produced >= output_frames:
                        break
                    window = torch.cat([window, step], dim=1)[:, -input_len:]
                pred_m = torch.cat(steps, dim=1)
                if output_frames is not None:
                    pred_m = pred_m[:, :output_frames]
        finally:
            model.train(was_training)
        batch, frames = pred_m.shape[:2]
        full = past_mm[:, -1:].float().expand(batch, frames, -1, -1).clone()
        full[:, :, predicted] = pred_m * _MM_PER_M
        _fill_derived_joints(full, skeleton)
        return full

    return predict


def zero_velocity_predict_fn(output_frames: int) -> PredictFn:
    """The zero-velocity baseline: repeat the last observed pose ``output_frames`` times."""

    def predict(past_mm: torch.Tensor) -> torch.Tensor:
        return past_mm[:, -1:].float().expand(-1, output_frames, -1, -1).clone()

    return predict


def _summary(per_action_frame: torch.Tensor, actions: list[str], protocol: ForecastProtocol) -> dict:
    """Per-horizon / avg figures per action and over actions from a [A, T_out] mean-error table."""

    def row(values: torch.Tensor) -> dict[str, float]:
        out = {str(ms): float(values[frame - 1]) for ms, frame in zip(protocol.horizons_ms, protocol.horizon_frames)}
        out["avg"] = float(values.mean())
        return out

    mean_over_actions = per_action_frame.mean(dim=0)
    return {
        "mean": row(mean_over_actions),
        "per_action": {action: row(per_action_frame[a]) for a, action in enumerate(actions)},
        "per_frame": [float(v) for v in mean_over_actions],
    }


def _result_header(motion: MotionSet, protocol: ForecastProtocol, action_names: list[str],
                   counts: torch.Tensor) -> dict:
    """What an evaluation result records besides its figures: protocol, data, windows and joint counts."""
    skeleton = motion.skeleton
    return {
        "protocol": protocol.name,
        "protocol_version": protocol.version,
        "dataset": motion.dataset,
        "split": motion.split,
        "input_frames": protocol.input_frames,
        "output_frames": protocol.output_frames,
        "fps": protocol.fps,
        "horizons_ms": list(protocol.horizons_ms),
        "actions": action_names,
        "num_windows": int(counts.sum()),
        "num_windows_per_action": {a: int(counts[i]) for i, a in enumerate(action_names)},
        "joint_counts": {FULL_JOINTS_KEY: skeleton.num_joints, PREDICTED_JOINTS_KEY: len(skeleton.predicted)},
    }


def evaluate_forecaster(
    predict_fn: PredictFn,
    motion: MotionSet,
    protocol: ForecastProtocol,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    actions: Sequence[str] | None = None,
    fill_unpredicted_from_target: bool = True,
) -> dict:
    """Evaluate ``predict_fn`` on the windows ``protocol`` defines on ``motion``.

    Args:
        predict_fn: ``Tensor[B, T_in, J_full, 3] -> Tensor[B, T_out, J_full, 3]`` in millimetres, e.g. from
            :func:`make_predict_fn`.
        motion: the evaluation split at ``protocol.fps``.
        protocol: windows, lengths and horizons.
        device: where windows are sent and errors computed.
        batch_size: windows per ``predict_fn`` call.
        actions: evaluate only these actions (default all present).
        fill_unpredicted_from_target: apply the literature's rule (joints neither predicted nor copied take the
            ground-truth future; copies are refilled from their sources) before scoring.

    Returns:
        A JSON-serialisable dict: ``protocol``, ``protocol_version``, ``dataset``, ``split``, ``input_frames``,
        ``output_frames``, ``fps``, ``horizons_ms``, ``actions``, ``num_windows``, ``num_windows_per_action``,
        ``joint_counts`` and, for each of ``mpjpe32_mm`` (all joints) and ``mpjpe22_mm`` (predicted joints),
        ``{"mean": {"80": .., ..., "1000": .., "avg": ..}, "per_action": {action: {...}}, "per_frame": [T_out]}``
        where ``mean`` is the unweighted mean over actions.

    Raises:
        ValueError: no windows, or ``predict_fn`` returned a wrongly shaped tensor.
    """
    if actions is not None:
        motion = motion.subset(actions=actions)
    starts, action_index, action_names = protocol_windows(motion, protocol)
    if starts.numel() == 0:
        raise ValueError(f"protocol {protocol.name!r} yields no window on {motion.summary()}")
    skeleton = motion.skeleton
    n_in, n_out = protocol.input_frames, protocol.output_frames
    predicted = torch.tensor(skeleton.predicted, device=device)
    unpredicted = list(skeleton.unpredicted_joints())
    joint_error = get_metric("per_joint_error").fn
    num_actions = len(action_names)
    sums = {key: torch.zeros(num_actions, n_out, dtype=torch.float64, device=device)
            for key in (FULL_JOINTS_KEY, PREDICTED_JOINTS_KEY)}
    counts = torch.bincount(action_index, minlength=num_actions)

    for begin in range(0, starts.numel(), batch_size):
        batch_starts = starts[begin:begin + batch_size]
        windows = motion.gather(batch_starts, protocol.window_frames).to(device)
        past, future = windows[:, :n_in], windows[:, n_in:]
        pred = predict_fn(past)
        if tuple(pred.shape) != tuple(future.shape):
            raise ValueError(f"predict_fn returned {tuple(pred.shape)}, expected {tuple(future.shape)} "
                             f"([B, T_out, J_full, 3] in mm)")
        pred = pred.to(device=device, dtype=torch.float32).clone()
        if fill_unpredicted_from_target:
            pred[:, :, unpredicted] = future[:, :, unpredicted]
            _fill_derived_joints(pred, skeleton)
        errors = joint_error(pred, future)  # [B, T_out, J]
        batch_actions = action_index[begin:begin + batch_size].to(device)
        sums[FULL_JOINTS_KEY].index_add_(0, batch_actions, errors.mean(-1).double())
        sums[PREDICTED_JOINTS_KEY].index_add_(0, batch_actions, errors.index_select(-1, predicted).mean(-1).double())

    denominators = counts.to(device=device, dtype=torch.float64)[:, None]
    result = _result_header(motion, protocol, action_names, counts)
    for key, total in sums.items():
        result[key] = _summary((total / denominators).cpu(), action_names, protocol)
    return result
