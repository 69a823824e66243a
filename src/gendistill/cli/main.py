"""The ``gendistill`` command: one thin module per subcommand, each a call into the library."""

from __future__ import annotations

import argparse
import importlib
import sys

from gendistill import __version__
from gendistill.errors import UserError

SUBCOMMANDS = ("datasets", "select", "distill", "evaluate", "export", "full_data")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit 2) like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gendistill", description="Generative dataset distillation toolkit.")
    parser.add_argument("--version", action="version", version=f"gendistill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"gendistill.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except UserError as e:
        print(f"gendistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
