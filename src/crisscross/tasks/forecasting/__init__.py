"""The forecasting task: windows, losses, result tables and the :class:`ForecastingTask` that ties them."""

from crisscross.tasks.forecasting.task import SELECT_METRIC, VALIDATION_METRIC, ForecastingTask

__all__ = ["SELECT_METRIC", "VALIDATION_METRIC", "ForecastingTask"]
