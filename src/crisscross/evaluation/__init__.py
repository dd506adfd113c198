"""Evaluation: the metric registry, named protocols with the literature's exact windows, and each task's evaluator."""

from crisscross.evaluation.forecasting import (
    FULL_JOINTS_KEY,
    PREDICTED_JOINTS_KEY,
    evaluate_forecaster,
    make_predict_fn,
    zero_velocity_predict_fn,
)
from crisscross.evaluation.metrics import (
    METRICS,
    Metric,
    bone_lengths,
    get_metric,
    mpjpe,
    per_joint_error,
    velocity,
    velocity_error,
)
from crisscross.evaluation.protocols import (
    PROTOCOLS,
    ForecastProtocol,
    check_protocol_fits,
    default_protocol_name,
    get_protocol,
    list_protocols,
    protocol_windows,
)

__all__ = [
    "FULL_JOINTS_KEY",
    "METRICS",
    "PREDICTED_JOINTS_KEY",
    "PROTOCOLS",
    "ForecastProtocol",
    "Metric",
    "bone_lengths",
    "check_protocol_fits",
    "default_protocol_name",
    "evaluate_forecaster",
    "get_metric",
    "get_protocol",
    "list_protocols",
    "make_predict_fn",
    "mpjpe",
    "per_joint_error",
    "protocol_windows",
    "velocity",
    "velocity_error",
    "zero_velocity_predict_fn",
]
