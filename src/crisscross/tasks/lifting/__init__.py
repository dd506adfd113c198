"""The lifting task: device-resident windows and the :class:`LiftingTask` that ties data, models and evaluation."""

from crisscross.tasks.lifting.task import LIFTING_SELECT_METRIC, LIFTING_VALIDATION_METRIC, LiftingTask

__all__ = ["LIFTING_SELECT_METRIC", "LIFTING_VALIDATION_METRIC", "LiftingTask"]
