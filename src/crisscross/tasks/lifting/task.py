"""2D-to-3D lifting as a task: a window of 2D keypoints in, the 3D pose of its centre frame (or of every frame) out.

A sample is the ``R`` frames (``data.input_frames``, the receptive field) centred on one frame of a sequence seen by
one camera: normalised 2D keypoints ``[R, J, 2]`` and the camera-frame 3D pose ``[R, J, 3]`` (metres inside models,
millimetres in results, root-relative). ``data.output_frames`` is 1 for centre-frame training (VideoPose3D,
PoseFormer) or ``R`` for sequence-to-sequence training (STCFormer); either way evaluation scores the centre frame of
every frame's window (:mod:`crisscross.evaluation.lifting`), with test-time flip averaging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn as nn
from tabulate import tabulate

from crisscross.config.schema import ConfigError, DataConfig, TrainConfig
from crisscross.data.datasets import load_motion
from crisscross.data.lifting import LiftingSet
from crisscross.data.skeleton import skeleton_to_dict
from crisscross.evaluation.lifting import LIFTING_METRICS, VELOCITY_KEY, evaluate_lifter
from crisscross.evaluation.metrics import get_metric
from crisscross.evaluation.protocols import LiftingProtocol, get_protocol, list_protocols
from crisscross.models.registry import build_model
from crisscross.tasks.lifting.windows import KEYPOINT_CHANNELS, LiftingBank

__all__ = ["LIFTING_SELECT_METRIC", "LIFTING_VALIDATION_METRIC", "LiftingTask"]

LIFTING_SELECT_METRIC = "mpjpe_mm.mean"
LIFTING_VALIDATION_METRIC = "val/mpjpe_mm"
_MM_PER_M = 1000.0


def _centre_output(pred: torch.Tensor) -> torch.Tensor:
    """``[B, T_out, J, 3] -> [B, J, 3]``: the centre frame of a sequence output (the only frame of a 1-frame one)."""
    return pred[:, pred.shape[1] // 2]


class LiftingTask:
    """2D-to-3D lifting through the task seam (see :mod:`crisscross.tasks.base`)."""

    name = "lifting"
    description = "2D-to-3D lifting: 2D keypoints of R frames in, the 3D pose of the centre frame (or all) out"
    select_metric = LIFTING_SELECT_METRIC
    validation_metric = LIFTING_VALIDATION_METRIC
    loss_term_names = ("loss", "mpjpe")
    baseline_model = "mean-pose"

    def load_split(self, data: DataConfig, split: str, actions: Sequence[str] | None = None) -> LiftingSet:
        """One split of a lifting dataset (``actions`` overrides ``data.actions``)."""
        dataset = load_motion(data.dataset, split=split, data_dir=data.data_dir, cache_dir=data.cache_dir,
                              actions=data.actions if actions is None else actions)
        if not isinstance(dataset, LiftingSet):
            raise ValueError(f"data.dataset: {data.dataset!r} is not a lifting dataset (task=lifting); lifting "
                             f"datasets have lifting protocols: {', '.join(self._datasets())}")
        dataset.source = {"data_dir": data.data_dir, "cache_dir": data.cache_dir}
        return dataset

    def check_select_metric(self, protocol: LiftingProtocol, path: str | None) -> None:
        """Fail before training unless ``path`` (``eval.select_metric``; ``None``: :data:`LIFTING_SELECT_METRIC`)
        names a figure of a lifting result: ``<metric>.mean`` or ``<metric>.per_action.<action>``, also under
        ``per_subject.<subject>.`` for a protocol scored by subject."""
        parts = (path or LIFTING_SELECT_METRIC).split(".")
        keys = (*LIFTING_METRICS, VELOCITY_KEY)
        if parts[0] == "per_subject" and protocol.by_subject:  # per_subject.<subject>.<metric>...
            parts = parts[2:]
        if not (parts and parts[0] in keys and ((len(parts) == 2 and parts[1] == "mean")
                                                or (len(parts) == 3 and parts[1] == "per_action"))):
            raise ConfigError(f"eval.select_metric: {path!r} is no figure of a lifting result under {protocol.name}; "
                              f"expected <{'|'.join(keys)}>.mean or <...>.per_action.<action>"
                              + (" (or per_subject.<subject>.<...>)" if protocol.by_subject else "")
                              + f", e.g. {LIFTING_SELECT_METRIC}")

    def default_frames(self, dataset: str) -> tuple[int, int]:
        """``(input, output)`` frames of a model evaluated without a protocol: the dataset's shortest protocol."""
        fields = [get_protocol(n).receptive_field for n in list_protocols(dataset)
                  if isinstance(get_protocol(n), LiftingProtocol)]
        if not fields:
            raise ValueError(f"dataset {dataset!r} has no lifting protocol; lifting datasets: "
                             f"{', '.join(self._datasets())}")
        return min(fields), 1

    @staticmethod
    def _datasets() -> list[str]:
        protocols = [get_protocol(n) for n in list_protocols()]
        return sorted({p.dataset for p in protocols if isinstance(p, LiftingProtocol)})

    def resolve_protocol(self, dataset: str, input_frames: int, output_frames: int,
                         name: str | None = None) -> LiftingProtocol:
        """The named protocol, else the dataset's protocol whose receptive field is ``input_frames``."""
        if name is not None:
            protocol = get_protocol(name)
        else:
            found = [get_protocol(n) for n in list_protocols(dataset)]
            found = [p for p in found if isinstance(p, LiftingProtocol) and p.receptive_field == input_frames]
            if not found:
                raise ValueError(f"no lifting protocol for dataset {dataset!r} with a receptive field of "
                                 f"{input_frames} frames; known: {', '.join(list_protocols(dataset)) or 'none'}")
            protocol = found[0]
        if not isinstance(protocol, LiftingProtocol) or protocol.receptive_field != input_frames:
            raise ValueError(f"protocol {protocol.name} does not fit a lifting model of {input_frames} frames")
        if output_frames not in (1, input_frames):
            raise ValueError(f"data.output_frames: a lifting model outputs 1 (centre) or {input_frames} frames, "
                             f"got {output_frames}")
        return protocol

    def build_model(self, name: str, args: Mapping[str, Any], dataset: LiftingSet, input_frames: int,
                    output_frames: int) -> nn.Module:
        """A registry model for the dataset's joints; weight-free references are fitted to its training split."""
        model = build_model(name, dict(args), dataset.skeleton, input_frames, output_frames)
        if hasattr(model, "fit"):
            train = dataset if dataset.split == "train" else self._training_split(dataset, dataset.actions())
            model.fit(train.keypoints, train.positions / _MM_PER_M)
        return model

    def _training_split(self, dataset: LiftingSet, actions: Sequence[str]) -> LiftingSet:
        data = DataConfig(dataset=dataset.dataset, data_dir=dataset.source.get("data_dir"),
                          cache_dir=dataset.source.get("cache_dir"))
        return self.load_split(data, "train", actions)

    def sample_bank(self, dataset: LiftingSet, data: DataConfig, device: torch.device) -> LiftingBank:
        """Every training frame as the centre of a window of ``data.input_frames`` frames."""
        return LiftingBank.from_set(dataset, data.input_frames, device)

    def training_loss(self, model: nn.Module, batch: torch.Tensor, data: DataConfig, train: TrainConfig,
                      forward_context: Callable[[], AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
        """MPJPE (metres) of the centre frame, or of every frame when the model outputs all ``R``."""
        keypoints, target = batch[..., :KEYPOINT_CHANNELS], batch[..., KEYPOINT_CHANNELS:]
        with forward_context():
            pred = model(keypoints)
        if pred.shape[1] != target.shape[1]:
            target = target[:, target.shape[1] // 2:target.shape[1] // 2 + 1]
        loss = get_metric("mpjpe").fn(pred.float(), target.float()).mean()
        return loss, torch.stack([loss.detach(), loss.detach()])

    def loss_log(self, terms: Sequence[float]) -> dict[str, float]:
        """The training MPJPE in millimetres."""
        return {"mpjpe_mm": float(terms[1]) * _MM_PER_M}

    def evaluate(self, model: nn.Module, dataset: LiftingSet, protocol: LiftingProtocol, *,
                 device: torch.device | str, batch_size: int, actions: Sequence[str] | None = None,
                 flip: bool = True) -> dict[str, Any]:
        """P1, P2, N-MPJPE and MPJVE of the model on every frame (restores its train/eval mode)."""
        was_training = model.training
        model.eval()

        def lift(keypoints: torch.Tensor) -> torch.Tensor:
            return _centre_output(model(keypoints)) * _MM_PER_M

        try:
            return evaluate_lifter(lift, dataset, protocol, device=device, batch_size=batch_size, flip=flip,
                                   actions=actions)
        finally:
            model.train(was_training)

    def validation_row(self, result: Mapping[str, Any]) -> dict[str, float]:
        """The headline figures logged after each validation, keyed without ``val/``."""
        return {key: result[key]["mean"] for key in (*LIFTING_METRICS, VELOCITY_KEY)}

    def checkpoint_meta(self, dataset: LiftingSet, data: DataConfig, protocol: LiftingProtocol) -> dict[str, Any]:
        """What a checkpoint records to rebuild and evaluate the lifter without its config."""
        skeleton = dataset.skeleton
        return {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
                "dataset": dataset.dataset, "subjects": dataset.subjects(),
                "cameras": sorted({k.camera for k in dataset.keys}),
                "predicted_joints": list(skeleton.predicted), "fps": float(dataset.fps),
                "input_frames": data.input_frames, "output_frames": data.output_frames,
                "receptive_field": data.input_frames, "protocol": protocol.name,
                "normalisation": "2D: normalised screen coordinates (x / w * 2 - [1, h / w]); 3D: camera frame, "
                                 "root-relative, metres",
                "units": "normalised 2D in, metres out (root-relative, camera frame)"}

    def results_table(self, results: Mapping[str, Mapping[str, Any]]) -> str:
        """A heading and one row per labelled result: P1, P2, N-MPJPE and MPJVE (mm), averaged over actions."""
        first = next(iter(results.values()))
        stride = first.get("frame_stride", 1)
        scored = f"{first['num_frames']} frames" + (f" (every {stride}th)" if stride > 1 else "")
        heading = (f"Lifting errors (mm) on {first['dataset']} / {first['split']}, protocol {first['protocol']} "
                   f"({first['receptive_field']} frames, flip {'on' if first['flip'] else 'off'}), "
                   f"{scored}, mean over {len(first['actions'])} actions")
        keys = (*LIFTING_METRICS, VELOCITY_KEY)
        rows = [[label, *(r[k]["mean"] for k in keys)] for label, r in results.items()]
        headers = ["model", "MPJPE (P1)", "P-MPJPE (P2)", "N-MPJPE", "MPJVE"]
        return heading + "\n" + tabulate(rows, headers=headers, tablefmt="github", floatfmt=".1f")

    def report(self, result: Mapping[str, Any], label: str, *, per_action: bool = False, **_: Any) -> str:
        """The text ``crisscross eval`` prints: the headline row, then per action (and per subject) P1 and P2."""
        lines = [self.results_table({label: result})]
        keys = (*LIFTING_METRICS, VELOCITY_KEY)
        headers = ["action", "MPJPE (P1)", "P-MPJPE (P2)", "N-MPJPE", "MPJVE"]
        if per_action:
            rows = [[a, *(result[k]["per_action"][a] for k in keys)] for a in result["actions"]]
            lines += ["", tabulate(rows, headers=headers, tablefmt="github", floatfmt=".1f")]
        for subject, figures in result.get("per_subject", {}).items():
            rows = [[a, *(figures[k]["per_action"][a] for k in keys)] for a in result["actions"]]
            rows.append(["mean", *(figures[k]["mean"] for k in keys)])
            lines += ["", f"{subject}:", tabulate(rows, headers=headers, tablefmt="github", floatfmt=".1f")]
        return "\n".join(lines)
