"""The one exception type for mistakes a user can fix.

The CLI turns a :class:`UserError` into a single line on stderr and exit code 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the problem and the fix, in one line."""


def did_you_mean(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> UserError:
    """An error for an unknown registry name that lists the valid ones."""
    return UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(valid))}")
