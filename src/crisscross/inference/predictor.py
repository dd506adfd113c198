"""One entry point for both tasks: ``Predictor.from_checkpoint(path)(data)``.

The checkpoint's model says its task (the model registry); forecasters become a
:class:`~crisscross.inference.forecast.ForecastPredictor`, lifters a :class:`~crisscross.inference.lift.LiftPredictor`.
"""

from __future__ import annotations

from pathlib import Path

from crisscross.inference.forecast import ForecastPredictor
from crisscross.inference.lift import LiftPredictor
from crisscross.models.registry import get_model_entry
from crisscross.runs.checkpoint import load_model_from_checkpoint, resolve_checkpoint

__all__ = ["Predictor"]


class Predictor:
    """Factory of the task's predictor for a checkpoint (a file or a run folder's best one)."""

    @staticmethod
    def from_checkpoint(source: str | Path, device: str = "cpu") -> ForecastPredictor | LiftPredictor:
        """The predictor of checkpoint ``source`` on ``device``, its model in eval mode.

        Raises:
            CheckpointError: the file is missing, unreadable or not a crisscross checkpoint.
        """
        path = resolve_checkpoint(Path(source).expanduser())
        model, ckpt = load_model_from_checkpoint(path, device)
        task = get_model_entry(ckpt["model_name"]).task
        cls = LiftPredictor if task == "lifting" else ForecastPredictor
        return cls(model, ckpt, source=path.name, device=device)
