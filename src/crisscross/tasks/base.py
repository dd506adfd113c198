"""What a task is: the few things that differ between forecasting, lifting and later tasks.

The engine, run storage, tracking, sweeps, bench, profile and CLI are shared and never ask which task they run;
they call a :class:`Task`. A task decides what a sample is, how a model for it is built, what the training loss
is, how a model is evaluated and which figures are logged and tabulated. Adding a task is one package under
``crisscross/tasks/`` implementing this protocol plus one entry in :data:`crisscross.tasks.registry.TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import torch
import torch.nn as nn

from crisscross.config.schema import AugmentConfig, DataConfig, TrainConfig

__all__ = ["SampleBank", "Task"]


class SampleBank(Protocol):
    """A split's training samples, resident on the device, gathered into batches by index."""

    def __len__(self) -> int: ...

    def batch(self, idx: torch.Tensor, augment: AugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
        """Samples ``idx`` as one batch tensor ``[B, ...]``, augmented with draws from ``generator``."""
        ...


class Task(Protocol):
    """The task seam. ``dataset`` below is whatever :meth:`load_split` returns for the task."""

    name: str
    description: str
    select_metric: str  # dotted path into an evaluation result that selects checkpoints (lower is better)
    validation_metric: str  # the per-epoch log key of the same figure, e.g. for sweeps and reports
    loss_term_names: tuple[str, ...]  # names of the terms training_loss returns; the first is the total
    baseline_model: str  # the weight-free registry model printed beside a trained one

    def load_split(self, data: DataConfig, split: str, actions: Sequence[str] | None = None) -> Any:
        """One split of ``data.dataset``."""
        ...

    def resolve_protocol(self, dataset: str, input_frames: int, output_frames: int, name: str | None = None) -> Any:
        """The evaluation protocol ``name`` (or the dataset's default), checked against the model's windows."""
        ...

    def check_select_metric(self, protocol: Any, path: str | None) -> None:
        """Raise a ``ConfigError`` naming ``eval.select_metric`` unless results under ``protocol`` hold ``path``
        (``None``: :attr:`select_metric`), so a bad selection figure fails before training, not after an epoch."""
        ...

    def default_frames(self, dataset: str) -> tuple[int, int]:
        """``(input, output)`` frames for a weight-free model evaluated on ``dataset`` without a protocol."""
        ...

    def build_model(self, name: str, args: Mapping[str, Any], dataset: Any, input_frames: int,
                    output_frames: int) -> nn.Module:
        """A registry model sized for ``dataset``."""
        ...

    def sample_bank(self, dataset: Any, data: DataConfig, device: torch.device) -> SampleBank:
        """The training samples of ``dataset`` on ``device``."""
        ...

    def training_loss(self, model: nn.Module, batch: torch.Tensor, data: DataConfig, train: TrainConfig,
                      forward_context: Callable[[], AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, terms)``: the loss to back-propagate and its detached terms, ``terms[0]`` being the loss."""
        ...

    def loss_log(self, terms: Sequence[float]) -> dict[str, float]:
        """Named, human-scaled figures of the loss terms for logs (e.g. ``{"mpjpe_mm": 41.2}``)."""
        ...

    def evaluate(self, model: nn.Module, dataset: Any, protocol: Any, *, device: torch.device | str,
                 batch_size: int, actions: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON-serialisable evaluation result that records its protocol name and version."""
        ...

    def validation_row(self, result: Mapping[str, Any]) -> dict[str, float]:
        """Headline figures of a result, logged after each validation as ``val/<key>``."""
        ...

    def checkpoint_meta(self, dataset: Any, data: DataConfig, protocol: Any) -> dict[str, Any]:
        """What a checkpoint records to rebuild (``skeleton_spec``, ``input_frames``, ``output_frames``) and cite."""
        ...

    def results_table(self, results: Mapping[str, Mapping[str, Any]]) -> str:
        """A text table of labelled results, with a heading line saying what the figures are."""
        ...

    def report(self, result: Mapping[str, Any], label: str, *, per_action: bool = False, **options: Any) -> str:
        """The full text report of one result that ``crisscross eval`` prints (task-specific ``options``)."""
        ...
