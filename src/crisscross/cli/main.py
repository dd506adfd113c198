"""The ``crisscross`` command: one console script with subcommands (style.md R15).

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args) -> int``; this
module only dispatches and turns user errors (bad config, bad data, bad checkpoint) into one line on
stderr and exit code 2. ``--debug`` (or CRISSCROSS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

# name -> module under crisscross.cli implementing it
SUBCOMMANDS = {
    "train": "crisscross.cli.train",
    "eval": "crisscross.cli.evaluate",
    "export": "crisscross.cli.export",
    "models": "crisscross.cli.models",
    "datasets": "crisscross.cli.datasets",
    "runs": "crisscross.cli.runs",
    "sweep": "crisscross.cli.sweep",
    "report": "crisscross.cli.report",
    "bench": "crisscross.cli.bench",
    "profile": "crisscross.cli.profile",
    "attention": "crisscross.cli.attention",
    "animate": "crisscross.cli.animate",
}


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
    for name, module_name in SUBCOMMANDS.items():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from crisscross.config.schema import ConfigError
    from crisscross.data.errors import DataError
    from crisscross.training.checkpoint import CheckpointError

    return (ConfigError, DataError, CheckpointError, ValueError, KeyError, FileNotFoundError, FileExistsError)


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
    except _user_errors() as err:
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
