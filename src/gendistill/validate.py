"""Config values checked once, where a config object is built.

Every config dataclass of gendistill calls :func:`check_fields` from ``__post_init__``, so a value is refused
in the same words whether it came from a command-line flag, ``--set``, a recipe, a suite or Python. Types
come from the fields' annotations (an ``int`` field refuses ``"abc"`` and ``1.5``; a ``float`` field refuses
NaN and infinities); ranges from :func:`limit` on the field, which also carries the help text and choices
of the field's generated command-line flag::

    @dataclass(frozen=True)
    class Recipe:
        lr: float = limit(1e-3, gt=0, help="learning rate")
        steps: int = limit(100, ge=1, le=MAX_ITERATIONS)
        init: str = limit("real", choices=("real", "noise"))
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from gendistill.errors import UserError

# The ceilings of a budget: far beyond any run this toolkit is meant for, low enough that a typo of a few
# zeros is caught before a run that would never end (or a counter that overflows) starts.
MAX_ITERATIONS = 10_000_000
MAX_MINUTES = 60 * 24 * 30  # thirty days
MAX_EPOCHS = 100_000
MAX_IMAGE_SIZE = 4096


@dataclass(frozen=True)
class Limit:
    """The allowed range of a number (each bound optional); ``hint`` ends the error line."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    hint: str = ""

    def problem(self, value: float) -> str | None:
        for bound, ok, words in (
            (self.gt, lambda b: value > b, "greater than"),
            (self.ge, lambda b: value >= b, "at least"),
            (self.lt, lambda b: value < b, "less than"),
            (self.le, lambda b: value <= b, "at most"),
        ):
            if bound is not None and not ok(bound):
                return f"must be {words} {_number(bound)}"
        return None


def limit(
    default: Any = None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    hint: str = "",
    help: str = "",
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field whose value :func:`check_fields` keeps within the given bounds. ``help`` and
    ``choices`` document it where it becomes a command-line flag (the config's own checks refuse other
    values, in words of its own)."""
    metadata = {"limit": Limit(gt, ge, lt, le, hint), "help": help, "choices": choices}
    return field(default=default, metadata=metadata)


def check_fields(obj: object, prefix: str = "") -> None:
    """Raise :class:`UserError` for the first field of dataclass ``obj`` of the wrong type or out of range."""
    hints = _hints(type(obj))
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        check_value(prefix + f.name, value, hints.get(f.name, Any), f.metadata.get("limit"))


def check_value(name: str, value: Any, annotation: Any, bounds: Limit | None = None) -> None:
    """One value against its annotation and bounds (see :func:`check_fields`)."""
    options = _options(annotation)
    if value is None:
        if type(None) in options or Any in options:
            return
        raise UserError(f"{name} must be given (got None)")
    if not any(_is(value, t) for t in options):
        raise UserError(f"{name} must be {_describe(options)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        problem = bounds.problem(value)
        if problem:
            hint = f"; {bounds.hint}" if bounds.hint else ""
            raise UserError(f"{name} {problem}, got {_number(value)}{hint}")


def finite_number(name: str, value: object) -> float:
    """``value`` as a float, refusing text, NaN and infinities (for values that are not config fields)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UserError(f"{name} must be a finite number, got {value}")
    return number


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _options(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is(value: Any, t: Any) -> bool:
    """Whether ``value`` passes as type ``t``; types the checker does not model (tuples, objects) pass."""
    if t is Any:
        return True
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is str:
        return isinstance(value, str)
    if t is type(None):
        return value is None
    return True


def _describe(options: tuple[Any, ...]) -> str:
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return " or ".join(words.get(t, getattr(t, "__name__", str(t))) for t in options if t is not type(None))


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)
