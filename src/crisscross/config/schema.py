"""Typed experiment configuration: frozen dataclasses with validation, in the style of nanoGPT and timm.

YAML files carry values only; `crisscross.config.load` turns them into these dataclasses, rejecting
unknown keys, wrong types and out-of-range values with an error that names the dotted key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OptimConfig",
    "SchedConfig",
    "TrackConfig",
    "TrainConfig",
]


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range; the message names the key."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _choice(value: str, key: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, key, f"got {value!r}, expected one of {', '.join(allowed)}")


@dataclass(frozen=True)
class AugmentConfig:
    """Skeleton-correct augmentations applied to training windows (each switchable)."""

    rotate: bool = False
    mirror: bool = False
    reverse: bool = False

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class DataConfig:
    """Which motion data to train and evaluate on, and how it is windowed."""

    dataset: str = "synthetic"
    data_dir: str | None = None
    cache_dir: str | None = None
    input_frames: int = 10
    output_frames: int = 25
    train_split: str = "train"
    val_split: str = "val"
    train_stride: int = 1
    actions: tuple[str, ...] | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        _check(self.input_frames >= 1, "data.input_frames", f"must be >= 1, got {self.input_frames}")
        _check(self.output_frames >= 1, "data.output_frames", f"must be >= 1, got {self.output_frames}")
        _check(self.train_stride >= 1, "data.train_stride", f"must be >= 1, got {self.train_stride}")


@dataclass(frozen=True)
class ModelConfig:
    """A registry name plus keyword overrides for its builder (never an import path)."""

    name: str = "stcformer"
    args: dict[str, Any] = field(default_factory=dict)


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "warmup_cosine", "step", "multistep")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer recipe; parameter groups follow the model's no-decay rules."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False
    momentum: float = 0.0
    nesterov: bool = False
    clip_grad_norm: float | None = None
    fused: bool = True

    def __post_init__(self) -> None:
        _choice(self.name, "optim.name", OPTIMIZERS)
        _check(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}")
        _check(0 <= self.momentum < 1, "optim.momentum", f"must be in [0, 1), got {self.momentum}")
        _check(all(0 <= b < 1 for b in self.betas), "optim.betas", f"must be in [0, 1), got {self.betas}")
        _check(not (self.nesterov and self.momentum == 0), "optim.nesterov", "needs optim.momentum > 0")
        _check(self.clip_grad_norm is None or self.clip_grad_norm > 0, "optim.clip_grad_norm",
               f"must be > 0 or null, got {self.clip_grad_norm}")


@dataclass(frozen=True)
class SchedConfig:
    """Learning-rate schedule, a pure function of the optimizer update count."""

    name: str = "warmup_cosine"
    warmup_steps: int = 0
    warmup_start_factor: float = 0.01
    final_factor: float = 0.01
    milestones: tuple[int, ...] = ()
    step_size: int = 0
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _choice(self.name, "sched.name", SCHEDULES)
        _check(self.warmup_steps >= 0, "sched.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _check(0 <= self.warmup_start_factor <= 1, "sched.warmup_start_factor", "must be in [0, 1]")
        _check(0 <= self.final_factor <= 1, "sched.final_factor", "must be in [0, 1]")
        _check(0 < self.gamma <= 1, "sched.gamma", f"must be in (0, 1], got {self.gamma}")
        _check(self.name != "step" or self.step_size > 0, "sched.step_size", "must be > 0 for the step schedule")
        _check(self.name != "multistep" or len(self.milestones) > 0, "sched.milestones",
               "must list at least one step for the multistep schedule")


PRECISIONS = ("fp32", "bf16", "fp16")
# Attention kernels (crisscross.training.attention_backend): the models' own explicit ops, or one of PyTorch's SDPA
# kernels; auto = explicit on CPU, PyTorch's choice elsewhere.
ATTENTION_BACKENDS = ("auto", "default", "explicit", "math", "flash", "efficient", "cudnn")
LOSSES = ("mpjpe", "mse")


@dataclass(frozen=True)
class TrainConfig:
    """The training budget, batch, precision and engine switches."""

    epochs: int = 10
    max_steps: int | None = None
    time_budget_s: float | None = None
    batch_size: int = 256
    epoch_fraction: float = 1.0
    device: str = "auto"
    precision: str = "fp32"
    tf32: bool = False
    compile: bool = False
    attention: str = "auto"
    cuda_graphs: bool = False
    deterministic: bool = False
    loss: str = "mpjpe"
    velocity_loss_weight: float = 0.0
    # forecasting: one weight per predicted training frame (data.output_frames) for a weighted mean over frames of
    # the position and velocity losses; null: the plain mean
    frame_weights: tuple[float, ...] | None = None
    ema_decay: float | None = None
    early_stop_patience: int | None = None
    init_from: str | None = None  # fine-tuning: start from these weights (a checkpoint file or a run folder)
    eval_every_epochs: int = 1
    log_every_steps: int = 50
    checkpoint_every_s: float | None = 60.0  # also write last.pt inside epochs this often (training time); null: off
    num_threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs", f"must be >= 1, got {self.epochs}")
        _check(self.max_steps is None or self.max_steps >= 1, "train.max_steps", "must be >= 1 or null")
        _check(self.time_budget_s is None or self.time_budget_s > 0, "train.time_budget_s", "must be > 0 or null")
        _check(self.batch_size >= 1, "train.batch_size", f"must be >= 1, got {self.batch_size}")
        _check(0 < self.epoch_fraction <= 1, "train.epoch_fraction", f"must be in (0, 1], got {self.epoch_fraction}")
        _choice(self.precision, "train.precision", PRECISIONS)
        _choice(self.loss, "train.loss", LOSSES)
        _choice(self.attention, "train.attention", ATTENTION_BACKENDS)
        _check(self.velocity_loss_weight >= 0, "train.velocity_loss_weight", "must be >= 0")
        _check(self.frame_weights is None or (len(self.frame_weights) > 0
                                              and all(w >= 0 for w in self.frame_weights)
                                              and sum(self.frame_weights) > 0), "train.frame_weights",
               "must be a non-empty list of weights >= 0 with a positive sum, or null")
        _check(self.ema_decay is None or 0 < self.ema_decay < 1, "train.ema_decay", "must be in (0, 1) or null")
        _check(self.early_stop_patience is None or self.early_stop_patience >= 1, "train.early_stop_patience",
               "must be >= 1 or null")
        _check(self.init_from is None or bool(str(self.init_from).strip()), "train.init_from",
               "must be a checkpoint file or run folder, or null")
        _check(self.eval_every_epochs >= 1, "train.eval_every_epochs", "must be >= 1")
        _check(self.log_every_steps >= 1, "train.log_every_steps", "must be >= 1")
        _check(self.checkpoint_every_s is None or self.checkpoint_every_s > 0, "train.checkpoint_every_s",
               "must be > 0 seconds or null")
        _check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"), "train.device",
               f"got {self.device!r}, expected auto, cpu, cuda, cuda:N or mps")


@dataclass(frozen=True)
class EvalConfig:
    """Validation/test protocol by name (see ``crisscross.evaluation.protocols``)."""

    protocol: str | None = None
    batch_size: int = 1024
    select_metric: str | None = None  # a dotted path into the evaluation result; None: the task's own

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, "eval.batch_size", f"must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class TrackConfig:
    """Where runs go and which trackers receive metrics (run folder and JSONL are always written)."""

    root: str = "runs"
    name: str | None = None
    project: str = "crisscross"  # the W&B project and the MLflow experiment
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str | None = None  # the older name of ``project`` for W&B; wins when set
    wandb_mode: str = "offline"
    mlflow: bool = False
    mlflow_uri: str | None = None  # null: an SQLite store, <root>/mlflow.db
    artifacts: bool = True  # send best.pt, eval.json and config.yaml to W&B / MLflow at the end of a run

    def __post_init__(self) -> None:
        _choice(self.wandb_mode, "track.wandb_mode", ("offline", "online", "disabled"))
        _check(bool(self.project.strip()), "track.project", "must be a non-empty name")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: its task, data, model, optimizer, schedule, training, evaluation and tracking."""

    task: str = "forecasting"  # a name in crisscross.tasks.registry.TASKS, checked when the task is looked up
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    def __post_init__(self) -> None:
        weights = self.train.frame_weights
        _check(weights is None or self.task == "forecasting", "train.frame_weights",
               f"weights the predicted frames of forecasting; task {self.task!r} has none, set it to null")
        _check(weights is None or len(weights) == self.data.output_frames, "train.frame_weights",
               f"has {len(weights or ())} weights, expected one per predicted frame (data.output_frames="
               f"{self.data.output_frames})")
