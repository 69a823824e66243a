"""The ``gendistill`` command: one thin module per subcommand, each a call into the library."""

from __future__ import annotations

import argparse
import importlib
import sys

from gendistill import __version__
from gendistill.errors import UserError

SUBCOMMANDS = (
    "datasets",
    "select",
    "prior",
    "experts",
    "distill",
    "sample",
    "invert",
    "generate",
    "evaluate",
    "crfd",
    "export",
    "full_data",
    "bench",
    "report",
)


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


def apply_recipe(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None
) -> argparse.Namespace:
    """Re-parse with the YAML recipe as defaults, so explicit command-line options still win."""
    import yaml

    try:
        with open(args.recipe) as f:
            recipe = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read recipe {args.recipe}: {e}") from None
    if not isinstance(recipe, dict):
        raise UserError(f"recipe {args.recipe} must be a mapping of option names to values")
    known = {a.dest for a in args.parser._actions}
    recipe = {str(k).replace("-", "_"): v for k, v in recipe.items()}
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise UserError(f"recipe {args.recipe} has unknown option(s) {unknown}; see gendistill {args.command} --help")
    args.parser.set_defaults(**recipe)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        if getattr(args, "recipe", None):
            args = apply_recipe(parser, args, argv)
        return args.run(args)
    except UserError as e:
        print(f"gendistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
