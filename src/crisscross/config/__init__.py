"""Typed, validated experiment configuration (YAML files plus dotted overrides)."""

from crisscross.config.load import apply_overrides, config_from_dict, config_to_dict, dump_config, load_config
from crisscross.config.schema import ConfigError, ExperimentConfig

__all__ = ["ConfigError", "ExperimentConfig", "apply_overrides", "config_from_dict", "config_to_dict",
           "dump_config", "load_config"]
