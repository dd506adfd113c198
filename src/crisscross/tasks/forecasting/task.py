"""Forecasting as a task: the last ``T_in`` frames of a 3D skeleton in, the next ``T_out`` frames out.

A sample is a window ``[T_in + T_out, J, 3]`` of one sequence (metres, root-relative, the skeleton's predicted
joints); the model maps ``past[B, T_in, J, 3]`` to ``future[B, T_out, J, 3]``; the loss is a position loss plus
an optional velocity term and whatever the model adds (``training_outputs``); validation is MPJPE per horizon
under a named protocol (:mod:`crisscross.evaluation.forecasting`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn as nn

from crisscross.config.schema import DataConfig, TrainConfig
from crisscross.data.datasets import load_motion
from crisscross.data.motion import MotionSet
from crisscross.data.skeleton import skeleton_to_dict
from crisscross.evaluation.forecasting import (
    FULL_JOINTS_KEY,
    PREDICTED_JOINTS_KEY,
    evaluate_forecaster,
    make_predict_fn,
)
from crisscross.evaluation.protocols import ForecastProtocol, check_protocol_fits, default_protocol_name, get_protocol
from crisscross.models.registry import build_model
from crisscross.tasks.forecasting.losses import position_loss, velocity_loss
from crisscross.tasks.forecasting.tables import action_table, horizon_table
from crisscross.tasks.forecasting.windows import WindowBank

__all__ = ["SELECT_METRIC", "VALIDATION_METRIC", "ForecastingTask"]

# The checkpoint-selection metric (a dotted path into an evaluation result) and the per-epoch log key that the
# sweeps, reports and run listings read by default: MPJPE averaged over the predicted joints and all 25 frames.
SELECT_METRIC = f"{PREDICTED_JOINTS_KEY}.mean.avg"
VALIDATION_METRIC = "val/mpjpe22_avg_mm"
_MM_PER_M = 1000.0


class ForecastingTask:
    """3D motion forecasting through the task seam (see :mod:`crisscross.tasks.base`)."""

    name = "forecasting"
    description = "3D motion forecasting: the last T_in frames of a skeleton in, the next T_out frames out"
    select_metric = SELECT_METRIC
    validation_metric = VALIDATION_METRIC
    loss_term_names = ("loss", "mpjpe", "velocity")
    baseline_model = "zero-velocity"

    def load_split(self, data: DataConfig, split: str, actions: Sequence[str] | None = None) -> MotionSet:
        """One split of ``data.dataset`` at 25 fps, millimetres (``actions`` overrides ``data.actions``)."""
        return load_motion(data.dataset, split=split, data_dir=data.data_dir, cache_dir=data.cache_dir,
                           actions=data.actions if actions is None else actions)

    def resolve_protocol(self, dataset: str, input_frames: int, output_frames: int,
                         name: str | None = None) -> ForecastProtocol:
        """The named protocol, else the dataset's default for these window lengths; it must fit the model."""
        protocol = get_protocol(name or default_protocol_name(dataset, input_frames, output_frames))
        check_protocol_fits(protocol, input_frames, output_frames)
        return protocol

    def default_frames(self, dataset: str) -> tuple[int, int]:
        """``(input, output)`` frames of a model evaluated without a protocol: the literature's 10 -> 25."""
        return 10, 25

    def build_model(self, name: str, args: Mapping[str, Any], dataset: MotionSet, input_frames: int,
                    output_frames: int) -> nn.Module:
        """A registry model for the dataset's predicted joints."""
        return build_model(name, dict(args), dataset.skeleton, input_frames, output_frames)

    def sample_bank(self, dataset: MotionSet, data: DataConfig, device: torch.device) -> WindowBank:
        """Every training window of ``T_in + T_out`` frames (stride ``data.train_stride``), resident on ``device``."""
        return WindowBank.from_motion(dataset, data.input_frames + data.output_frames, data.train_stride, device)

    def training_loss(self, model: nn.Module, batch: torch.Tensor, data: DataConfig, train: TrainConfig,
                      forward_context: Callable[[], AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one batch ``[B, T_in + T_out, J, 3]`` and its detached terms ``[loss, position, velocity]``.

        The model runs under ``forward_context`` (the engine's autocast and attention kernel); the loss is
        computed outside it, in float32.
        """
        past, future = batch[:, :data.input_frames], batch[:, data.input_frames:]
        with forward_context():
            # Models with teacher forcing or auxiliary terms expose training_outputs (DDP wrappers forward it).
            training_outputs = getattr(model, "training_outputs", None)
            pred, aux = training_outputs(past, future) if training_outputs is not None else (model(past), {})
        pos = position_loss(train.loss, pred, future)
        vel = velocity_loss(pred, future, past[:, -1:]) if train.velocity_loss_weight > 0 else pos.new_zeros(())
        extra = sum((v.float() for v in aux.values()), pos.new_zeros(()))
        loss = pos + train.velocity_loss_weight * vel + extra
        return loss, torch.stack([loss.detach(), pos.detach(), vel.detach()])

    def loss_log(self, terms: Sequence[float]) -> dict[str, float]:
        """Named figures of the loss terms for logs: the position term as MPJPE in millimetres."""
        return {"mpjpe_mm": float(terms[1]) * _MM_PER_M}

    def evaluate(self, model: nn.Module, dataset: MotionSet, protocol: ForecastProtocol, *,
                 device: torch.device | str, batch_size: int,
                 actions: Sequence[str] | None = None) -> dict[str, Any]:
        """The model's MPJPE per horizon and action on ``protocol``'s windows (restores its train/eval mode)."""
        was_training = model.training
        model.eval()
        try:
            predict = make_predict_fn(model, dataset.skeleton, protocol.output_frames)
            return evaluate_forecaster(predict, dataset, protocol, device=device, batch_size=batch_size,
                                       actions=actions)
        finally:
            model.train(was_training)

    def validation_row(self, result: Mapping[str, Any]) -> dict[str, float]:
        """The figures logged after each validation, keyed without the ``val/`` prefix: MPJPE over the predicted
        (22) and all (32) joints, averaged over the output frames and at each horizon (``mpjpe22_400ms_mm``)."""
        row: dict[str, float] = {}
        for key, name in ((PREDICTED_JOINTS_KEY, "mpjpe22"), (FULL_JOINTS_KEY, "mpjpe32")):
            mean = result[key]["mean"]
            row[f"{name}_avg_mm"] = mean["avg"]
            row.update({f"{name}_{horizon}ms_mm": value for horizon, value in mean.items() if horizon != "avg"})
        return row

    def checkpoint_meta(self, dataset: MotionSet, data: DataConfig, protocol: ForecastProtocol) -> dict[str, Any]:
        """What a checkpoint records to rebuild and evaluate the model without its config."""
        skeleton = dataset.skeleton
        return {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
                "predicted_joints": list(skeleton.predicted), "fps": float(dataset.fps),
                "input_frames": data.input_frames, "output_frames": data.output_frames,
                "protocol": protocol.name, "units": "metres in, metres out (root-relative)"}

    def results_table(self, results: Mapping[str, Mapping[str, Any]]) -> str:
        """A heading line and one row per labelled result: MPJPE per horizon over the predicted joints."""
        first = next(iter(results.values()))
        heading = (f"MPJPE (mm) on {first['dataset']} / {first['split']}, protocol {first['protocol']}, over the "
                   f"{first['joint_counts'][PREDICTED_JOINTS_KEY]} predicted joints; {first['num_windows']} windows")
        return heading + "\n" + horizon_table(results, PREDICTED_JOINTS_KEY)

    def report(self, result: Mapping[str, Any], label: str, *, per_action: bool = False,
               joints: str = "both") -> str:
        """The text ``crisscross eval`` prints: per-horizon tables for ``joints`` (22, 32 or both averagings)."""
        lines = [f"{label} on {result['dataset']} / {result['split']}, protocol {result['protocol']}, "
                 f"{result['num_windows']} windows"]
        keys = {"22": [PREDICTED_JOINTS_KEY], "32": [FULL_JOINTS_KEY],
                "both": [PREDICTED_JOINTS_KEY, FULL_JOINTS_KEY]}[joints]
        for key in keys:
            what = ("over the predicted joints" if key == PREDICTED_JOINTS_KEY else
                    "over all joints, copied and constant joints included (the literature's averaging)")
            lines += ["", f"MPJPE (mm) {what}, {result['joint_counts'][key]} joints",
                      horizon_table({label: result}, key)]
            if per_action:
                lines += ["", action_table(result, key)]
        return "\n".join(lines)
