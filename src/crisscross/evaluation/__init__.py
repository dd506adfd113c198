"""Forecast evaluation: pure metrics, named protocols with the literature's exact windows, and the evaluator."""

from crisscross.evaluation.evaluate import (
    FULL_JOINTS_KEY,
    PREDICTED_JOINTS_KEY,
    evaluate_forecaster,
    make_predict_fn,
    zero_velocity_predict_fn,
)
from crisscross.evaluation.metrics import bone_lengths, mpjpe, per_joint_error, velocity, velocity_error
from crisscross.evaluation.protocols import (
    PROTOCOLS,
    ForecastProtocol,
    get_protocol,
    list_protocols,
    protocol_windows,
)

__all__ = [
    "FULL_JOINTS_KEY",
    "PREDICTED_JOINTS_KEY",
    "PROTOCOLS",
    "ForecastProtocol",
    "bone_lengths",
    "evaluate_forecaster",
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
