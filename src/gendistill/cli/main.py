"""The ``gendistill`` command: one thin module per subcommand, each a call into the library."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import re
import sys
import time

from gendistill import __version__
from gendistill.errors import UserError
from gendistill.io import load_yaml
from gendistill.report.progress import set_quiet

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
            recipe = load_yaml(f.read(), f"recipe {args.recipe}") or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read recipe {args.recipe}: {str(e).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise UserError(f"recipe {args.recipe} is not a text file; pass a YAML file of option names") from None
    if not isinstance(recipe, dict):
        raise UserError(f"recipe {args.recipe} must be a mapping of option names to values")
    known = {a.dest for a in args.parser._actions}
    recipe = {str(k).replace("-", "_"): v for k, v in recipe.items()}
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise UserError(f"recipe {args.recipe} has unknown option(s) {unknown}; see gendistill {args.command} --help")
    args.parser.set_defaults(**recipe)
    return parser.parse_args(argv)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a plain StreamHandler keeps the one it was made with)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _show_warnings() -> None:
    """The library warns through ``logging``; on the command line a warning is one ``warning:`` line on stderr."""
    root = logging.getLogger("gendistill")
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    _show_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        if getattr(args, "recipe", None):
            args = apply_recipe(parser, args, argv)
        args.started = time.perf_counter()
        set_quiet(bool(getattr(args, "quiet", False)))
        return args.run(args)
    except UserError as e:
        print(f"gendistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        line = environment_fault(e)
        if line is None:
            raise
        print(f"gendistill {args.command}: error: {line}", file=sys.stderr)
        return 2
    finally:
        set_quiet(False)  # the flag is this command's; a caller in the same process (tests) starts loud


# The faults of the machine rather than of the program: the user fixes them (space, permissions, limits) and
# reruns; a resumable run continues from the checkpoints it wrote before the fault.
FAULTS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EROFS: "the file system is read-only; choose an output path on a writable disk",
    errno.EACCES: "permission denied; fix the folder's permissions or choose another path",
    errno.EPERM: "operation not permitted; fix the folder's permissions or choose another path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files on this machine; close some programs",
    errno.EIO: "an input/output error from the disk; check the disk",
}
RESUME = "; then rerun (with --resume where the command takes it: the checkpoints written so far are kept)"


def environment_fault(e: BaseException) -> str | None:
    """One line for an OSError of the environment (or safetensors' report of one), else None."""
    code, where = getattr(e, "errno", None), getattr(e, "filename", None)
    if code is None and type(e).__name__ == "SafetensorError":  # an io::Error from Rust, with its OS code
        found = re.search(r"(?:code: |os error )(\d+)", str(e))
        code = int(found.group(1)) if found else None
    if code not in FAULTS:
        return None
    at = f" at {where}" if where else ""
    return f"{FAULTS[code]}{at} ({os.strerror(code)}){RESUME}"


if __name__ == "__main__":
    sys.exit(main())
