"""The ``crisscross`` command: one console script with subcommands.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args) -> int``; this
module only dispatches and turns user errors (bad config, bad data, bad checkpoint) into one line on
stderr and exit code 2. ``--debug`` (or CRISSCROSS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from crisscross.cli import animate as animate_command
from crisscross.cli import attention as attention_command
from crisscross.cli import bench as bench_command
from crisscross.cli import datasets as datasets_command
from crisscross.cli import evaluate as evaluate_command
from crisscross.cli import export as export_command
from crisscross.cli import import_peer as import_command
from crisscross.cli import models as models_command
from crisscross.cli import predict as predict_command
from crisscross.cli import profile as profile_command
from crisscross.cli import report as report_command
from crisscross.cli import results as results_command
from crisscross.cli import runs as runs_command
from crisscross.cli import sweep as sweep_command
from crisscross.cli import train as train_command
from crisscross.config.schema import ConfigError
from crisscross.data.errors import DataError
from crisscross.runs.checkpoint import CheckpointError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: name -> the module implementing it (``add_parser`` and ``run``), in ``--help`` order
SUBCOMMANDS: dict[str, ModuleType] = {
    "train": train_command,
    "eval": evaluate_command,
    "export": export_command,
    "import": import_command,
    "results": results_command,
    "predict": predict_command,
    "models": models_command,
    "datasets": datasets_command,
    "runs": runs_command,
    "sweep": sweep_command,
    "report": report_command,
    "bench": bench_command,
    "profile": profile_command,
    "attention": attention_command,
    "animate": animate_command,
}

#: Errors a user's input causes: one line on stderr and exit code 2 instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataError, CheckpointError, ValueError, KeyError,
                                                FileNotFoundError, FileExistsError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message by default)
        sys.stderr.write(f"crisscross: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = _Parser(prog="crisscross", description="Train, evaluate and benchmark spatio-temporal attention "
                     "models of human motion.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("CRISSCROSS_DEBUG") == "1"
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        sys.stderr.write(f"crisscross {args.command}: error: {message}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"crisscross {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
