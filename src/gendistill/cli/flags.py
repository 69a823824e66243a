"""Command-line flags generated from config dataclasses, so every field has a flag and none drifts.

A field ``lr_f: float | None = limit(None, gt=0, help="...")`` becomes ``--lr-f FLOAT`` with that help; a
``bool`` field becomes ``--name/--no-name``; a tuple of numbers takes them comma-separated (``--betas
0,0.99``); ``choices`` come from the field too. Every generated flag
defaults to None, meaning "not given": the config's own default (or a loaded ``--config``) then serves,
and only what the user typed overrides it. Fields that are not scalars (dicts, tuples) are reached by the
options that build them (``--set``, ``--reg``).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

SCALARS = (bool, int, float, str)


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def flag_of(name: str, classes: Iterable[type]) -> str:
    """The flag a field of ``classes`` has (its own name, or the one its metadata keeps)."""
    for cls in classes:
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
        if f is not None:
            return flag_name(f.metadata.get("flag", name))
    return flag_name(name)


def scalar_type(annotation: Any) -> Any:
    """How a flag reads the field: its one scalar type (``int | None`` -> int; ``Any`` -> str), a parser of
    comma-separated numbers for a tuple of them, or None for what a flag cannot hold (dicts)."""
    if annotation is Any:
        return str
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    kinds = [t for t in options if t is not type(None)]
    if len(kinds) != 1:
        return None
    if typing.get_origin(kinds[0]) is tuple:
        items = {t for t in typing.get_args(kinds[0]) if t is not Ellipsis}
        return _numbers(items.pop()) if len(items) == 1 and items <= {int, float} else None
    return kinds[0] if kinds[0] in SCALARS else None


def _numbers(kind: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None

    parse.__name__ = f"{kind.__name__},..."  # the metavar
    return parse


def config_fields(classes: Iterable[type], skip: Iterable[str] = ()) -> dict[str, tuple[type, dataclasses.Field]]:
    """``name -> (scalar type, field)`` over ``classes`` (a name shared by several classes appears once)."""
    out: dict[str, tuple[type, dataclasses.Field]] = {}
    skipped = set(skip)
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = scalar_type(hints[f.name])
            if f.name not in skipped and f.name not in out and kind is not None:
                out[f.name] = (kind, f)
    return out


def add_config_flags(
    group: argparse.ArgumentParser | argparse._ArgumentGroup,
    classes: Iterable[type],
    skip: Iterable[str] = (),
    labels: dict[type, str] | None = None,
) -> list[str]:
    """A flag for every scalar field of ``classes``; returns the field names that got one. ``labels`` names
    the classes where a shared field's default differs between them ("default: gan 4000, diffusion 20000")."""
    classes = list(classes)
    made = config_fields(classes, skip)
    for name, (kind, f) in made.items():
        text = f.metadata.get("help", "")
        defaults = _defaults(name, classes, labels or {})
        if defaults and "default" not in text:
            text = f"{text} (default: {defaults})" if text else f"default: {defaults}"
        flag = flag_name(f.metadata.get("flag", name))  # a field may keep a shorter established flag
        if kind is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            metavar = None if f.metadata.get("choices") else kind.__name__.upper()
            group.add_argument(
                flag, dest=name, type=kind, default=None, choices=f.metadata.get("choices"), metavar=metavar, help=text
            )
    return list(made)


def _defaults(name: str, classes: list[type], labels: dict[type, str]) -> str:
    """The field's default, or each class's where they differ and the classes are labelled."""
    values = {}
    for cls in classes:
        f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
        if f is not None and f.default not in (None, dataclasses.MISSING):
            values[labels.get(cls, "")] = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    if len(set(values.values())) > 1 and all(values):
        return ", ".join(f"{label} {value}" for label, value in values.items())
    return str(next(iter(values.values()))) if values else ""


def config_from(args: argparse.Namespace, cls: type) -> Any:
    """``cls`` built from the flags the user set; its own defaults for the rest."""
    return cls(**given(args, [f.name for f in dataclasses.fields(cls)]))


def given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The fields among ``names`` the user set."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def flags_table() -> str:
    """Markdown: every config field of the commands that build configs, and the flag that sets it."""
    from gendistill.cli.main import build_parser
    from gendistill.report.table import render_table

    parser = build_parser()
    rows = []
    for command, classes in _commands():
        sub = parser
        for name in command.split():
            sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        flags = {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings}
        for cls in classes:
            for f in dataclasses.fields(cls):
                way = flags.get(f.name) or WAYS_IN.get(f.name, "(set by the data)")
                rows.append({"command": command, "config": cls.__name__, "field": f.name, "flag": way})
    return render_table(rows, markdown=True)


# fields reached by an option of another name, or set by what the command reads
WAYS_IN = {
    "compile": "--no-compile",
    "objective": "--set NAME=VALUE",
    "regularisers": "--reg NAME=WEIGHT",
}


def _commands() -> list[tuple[str, list[type]]]:
    from gendistill.inversion import GenerateConfig, InversionConfig
    from gendistill.methods import RunOptions
    from gendistill.params import PARAMS
    from gendistill.priors.diffusion_train import DiffusionRecipe
    from gendistill.priors.stylegan import StyleGANConfig
    from gendistill.priors.train import GanRecipe

    params = [PARAMS.get(name).Config for name in PARAMS.names()]
    return [
        ("distill", [RunOptions, *params]),
        ("invert", [InversionConfig]),
        ("generate", [GenerateConfig]),
        ("prior train", [StyleGANConfig, GanRecipe, DiffusionRecipe]),
    ]
