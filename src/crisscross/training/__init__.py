"""The training engine: :func:`fit` trains any task's model in a run folder (:mod:`.setup`, then :mod:`.loop`)."""

from crisscross.training.loop import EpochCallback, RunResult, TrainingDiverged, fit

__all__ = ["EpochCallback", "RunResult", "TrainingDiverged", "fit"]
