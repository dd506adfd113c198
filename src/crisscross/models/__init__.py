"""Forecasting models. Importing this package registers every model (see ``registry``)."""

from crisscross.models.registry import count_parameters, create_model, get_model_entry, list_models, register_model

__all__ = ["count_parameters", "create_model", "get_model_entry", "list_models", "register_model"]
