"""Evaluation windows for the analysis commands, and per-joint / per-horizon error tables and plots.

The windows are those of an evaluation protocol (``evaluation/protocols.py``) on a split, so "sample 3" means the
fourth window ``crisscross eval`` scores. Errors follow ``evaluation/forecasting.py`` exactly: the model's prediction
of the full skeleton (``make_predict_fn``), joints that are neither predicted nor copies take the ground-truth future
and copies are refilled from their sources (the literature's rule); the error is the per-joint L2 distance in mm,
averaged within each action and then over actions (unweighted, as the reported MPJPE). The per-horizon curve averages
the predicted joints (the figure ``crisscross eval`` reports first); the per-joint bars cover the predicted joints.

Plot functions take tensors and an optional ``Axes`` and return the ``Figure``; matplotlib is imported lazily with
the ``Agg`` backend, so nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crisscross.data.datasets import load_motion
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.evaluation.metrics import per_joint_error
from crisscross.evaluation.protocols import default_protocol_name, get_protocol, protocol_windows
from crisscross.tasks.forecasting.windows import MM_PER_M

__all__ = [
    "Windows",
    "action_mean_errors",
    "full_skeleton_prediction",
    "load_windows",
    "plot_per_horizon",
    "plot_per_joint",
    "window_errors",
    "write_error_plots",
]


@dataclass
class Windows:
    """Selected evaluation windows of one split, plus everything needed to score all of them.

    Attributes:
        motion: the loaded split (``MotionSet``).
        protocol: the ``ForecastProtocol`` whose windows these are.
        starts: LongTensor[W] global start frames of every evaluation window.
        action_index: LongTensor[W] action of each window (index into ``action_names``).
        action_names: the actions present.
        samples: indices (into ``starts``) of the selected windows.
        windows_mm: Tensor[S, T_in + T_out, J_full, 3] the selected windows, millimetres.
        past_m: Tensor[S, T_in, J, 3] their observed frames on the predicted joints, metres (the model's input).
    """

    motion: Any
    protocol: Any
    starts: torch.Tensor
    action_index: torch.Tensor
    action_names: list[str]
    samples: list[int]
    windows_mm: torch.Tensor
    past_m: torch.Tensor

    @property
    def skeleton(self) -> Any:
        """The data's skeleton."""
        return self.motion.skeleton

    @property
    def joint_names(self) -> list[str]:
        """Names of the predicted joints, in model order."""
        return [self.skeleton.joint_names[j] for j in self.skeleton.predicted]

    @property
    def description(self) -> str:
        """``<dataset>/<split>, protocol <name>``."""
        return f"{self.motion.dataset}/{self.motion.split}, protocol {self.protocol.name}"

    def sample_action(self, position: int) -> str:
        """Action of the ``position``-th selected window."""
        return self.action_names[int(self.action_index[self.samples[position]])]


def load_windows(dataset: str, split: str, input_frames: int, output_frames: int, samples: Sequence[int], *,
                 protocol: str | None = None, data_dir: str | None = None, cache_dir: str | None = None) -> Windows:
    """Load ``split`` of ``dataset`` and select evaluation windows ``samples`` of ``protocol`` (default: the
    dataset's default protocol for these window lengths).

    Raises:
        ValueError: a sample index beyond the number of windows, or a protocol of other lengths.
        DataError: unknown dataset or split, missing data.
    """
    proto = get_protocol(protocol or default_protocol_name(dataset, input_frames, output_frames))
    if (proto.input_frames, proto.output_frames) != (input_frames, output_frames):
        raise ValueError(f"protocol {proto.name} is {proto.input_frames} -> {proto.output_frames} frames but the "
                         f"model is {input_frames} -> {output_frames}")
    motion = load_motion(dataset, split=split, data_dir=data_dir, cache_dir=cache_dir)
    starts, action_index, action_names = protocol_windows(motion, proto)
    bad = [s for s in samples if not 0 <= s < starts.numel()]
    if bad:
        raise ValueError(f"sample {bad[0]} is out of range: {dataset}/{split} has {starts.numel()} evaluation windows "
                         f"under protocol {proto.name} (use 0..{starts.numel() - 1})")
    windows_mm = motion.gather(starts[list(samples)], proto.window_frames).float()
    past_m = windows_mm[:, :input_frames][:, :, list(motion.skeleton.predicted)] / MM_PER_M
    return Windows(motion, proto, starts, action_index, action_names, list(samples), windows_mm, past_m)


def full_skeleton_prediction(predict_fn: Callable[[torch.Tensor], torch.Tensor], windows_mm: torch.Tensor,
                             input_frames: int, skeleton: Any) -> torch.Tensor:
    """The model's full-skeleton future, completed by the evaluation rule.

    Args:
        predict_fn: ``past_mm[B, T_in, J_full, 3] -> [B, T_out, J_full, 3]`` (``make_predict_fn``).
        windows_mm: Tensor[B, T_in + T_out, J_full, 3] ground-truth windows (mm).
        input_frames: T_in.
        skeleton: the data's skeleton.

    Returns:
        Tensor[B, T_out, J_full, 3] (mm): predicted joints from the model, copies from their sources, the other
        joints from the ground-truth future (as ``evaluate_forecaster`` scores it).
    """
    past, future = windows_mm[:, :input_frames], windows_mm[:, input_frames:]
    pred = predict_fn(past).float().clone()
    if tuple(pred.shape) != tuple(future.shape):
        raise ValueError(f"the model predicted {tuple(pred.shape)}, expected {tuple(future.shape)}")
    unpredicted = list(skeleton.unpredicted_joints())
    pred[:, :, unpredicted] = future[:, :, unpredicted]
    if skeleton.copies:
        pred[:, :, list(skeleton.copy_destinations())] = pred[:, :, list(skeleton.copy_sources())]
    return pred


def window_errors(predict_fn: Callable[[torch.Tensor], torch.Tensor], motion: Any, starts: torch.Tensor,
                  input_frames: int, output_frames: int, batch_size: int = 512) -> torch.Tensor:
    """Per-joint errors of every window.

    Args:
        predict_fn: see :func:`full_skeleton_prediction`.
        motion: the split.
        starts: LongTensor[W] window starts.
        input_frames: T_in.
        output_frames: T_out.
        batch_size: windows per model call.

    Returns:
        Tensor[W, T_out, J_full] L2 error per window, future frame and joint (mm).
    """
    out = []
    for begin in range(0, starts.numel(), batch_size):
        windows = motion.gather(starts[begin:begin + batch_size], input_frames + output_frames).float()
        pred = full_skeleton_prediction(predict_fn, windows, input_frames, motion.skeleton)
        out.append(per_joint_error(pred, windows[:, input_frames:]))
    return torch.cat(out)


def action_mean_errors(errors: torch.Tensor, action_index: torch.Tensor) -> torch.Tensor:
    """Mean within each action, then unweighted mean over actions (the reported MPJPE's averaging).

    Args:
        errors: Tensor[W, ...] per-window errors.
        action_index: LongTensor[W] action of each window.

    Returns:
        Tensor[...] the mean.
    """
    num = int(action_index.max()) + 1 if action_index.numel() else 0
    if num == 0:
        raise ValueError("no windows to average")
    sums = torch.zeros((num,) + tuple(errors.shape[1:]), dtype=torch.float64)
    sums.index_add_(0, action_index, errors.double())
    counts = torch.bincount(action_index, minlength=num).double()
    present = counts > 0
    means = sums[present] / counts[present].view(-1, *([1] * (errors.dim() - 1)))
    return means.mean(dim=0).float()


def _pyplot() -> Any:
    import matplotlib  # lazy: heavy, and only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_per_joint(errors_mm: torch.Tensor, joint_names: Sequence[str], title: str = "", ax: Any = None) -> Any:
    """Bar chart of the mean error per joint.

    Args:
        errors_mm: Tensor[J] mean error of each joint (mm).
        joint_names: J names for the x axis.
        title: figure title.
        ax: draw into this Axes (default: a new figure).

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    if len(joint_names) != errors_mm.numel():
        raise ValueError(f"{errors_mm.numel()} errors but {len(joint_names)} joint names")
    fig, ax = (plt.subplots(figsize=(10, 4), dpi=100) if ax is None else (ax.figure, ax))
    values = errors_mm.detach().cpu().float().numpy()
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(joint_names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("mean error (mm)")
    ax.set_title(title or "error per joint")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_per_horizon(errors_mm: torch.Tensor, fps: float, title: str = "", ax: Any = None,
                     label: str | None = None) -> Any:
    """Mean error against the time after the last observed frame.

    Args:
        errors_mm: Tensor[T_out] mean error of each future frame (mm).
        fps: frame rate (frame k is at ``1000 * k / fps`` ms).
        title: figure title.
        ax: draw into this Axes (default: a new figure).
        label: legend label of the curve.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    fig, ax = (plt.subplots(figsize=(6, 4), dpi=100) if ax is None else (ax.figure, ax))
    values = errors_mm.detach().cpu().float().numpy()
    ms = [1000.0 * (k + 1) / fps for k in range(len(values))]
    ax.plot(ms, values, marker="o", markersize=3, label=label)
    ax.set_xlabel("time after the last observed frame (ms)")
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title(title or "error per horizon")
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    fig.tight_layout()
    return fig


def write_error_plots(model: torch.nn.Module, windows: Windows, out_prefix: str | Path,
                      title: str = "", batch_size: int = 512) -> tuple[Path, Path]:
    """Score ``model`` on every evaluation window of ``windows`` and write the per-joint and per-horizon PNGs.

    Args:
        model: the forecaster (metres in and out, predicted joints).
        windows: from :func:`load_windows`.
        out_prefix: files are ``<out_prefix>_per_joint.png`` and ``<out_prefix>_per_horizon.png``.
        title: prefix of both titles.
        batch_size: windows per model call.

    Returns:
        The two PNG paths.
    """
    proto = windows.protocol
    predict = make_predict_fn(model, windows.skeleton, proto.output_frames)
    errors = window_errors(predict, windows.motion, windows.starts, proto.input_frames, proto.output_frames,
                           batch_size)
    mean = action_mean_errors(errors, windows.action_index)  # [T_out, J_full]
    predicted = list(windows.skeleton.predicted)
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    joint_png = prefix.parent / f"{prefix.name}_per_joint.png"
    horizon_png = prefix.parent / f"{prefix.name}_per_horizon.png"
    plt = _pyplot()
    head = f"{title}: " if title else ""
    fig = plot_per_joint(mean[:, predicted].mean(0), windows.joint_names,
                         f"{head}mean error per joint over {proto.output_frames} frames ({windows.description})")
    fig.savefig(joint_png)
    plt.close(fig)
    fig = plot_per_horizon(mean[:, predicted].mean(1), proto.fps,
                           f"{head}MPJPE per horizon, {len(predicted)} joints")
    fig.savefig(horizon_png)
    plt.close(fig)
    return joint_png, horizon_png
