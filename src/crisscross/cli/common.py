"""Arguments shared by subcommands: ``--config FILE.yaml`` plus dotted ``key=value`` overrides."""

from __future__ import annotations

import argparse

from crisscross.config import ExperimentConfig, load_config
from crisscross.config.load import QUICKSTART_CONFIG

__all__ = ["add_config_arguments", "config_from_args"]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and trailing ``key=value`` overrides."""
    parser.add_argument("--config", "-c", metavar="FILE.yaml", help="experiment config (default: the quick-start "
                        f"config, {QUICKSTART_CONFIG.name}: a small STCFormer on the embedded data)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optim.lr=3e-4 "
                        "model.args.dim=64")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """Load ``--config`` (the quick-start config when absent) and apply the overrides."""
    return load_config(args.config or QUICKSTART_CONFIG, args.overrides)
