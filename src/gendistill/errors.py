"""The one exception type for mistakes a user can fix.

The CLI turns a :class:`UserError` into a single line on stderr and exit code 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the problem and the fix, in one line."""


def an(noun: str) -> str:
    """``noun`` with its indefinite article, by its first letter: "an ImageSet", "a GeneratorSet"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def did_you_mean(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> UserError:
    """An error for an unknown registry name that lists the valid ones."""
    return UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(valid))}")


def diverged(step: str, what: str, losses: list[float], kept: str | None, fix: str) -> UserError:
    """The one line that ends a run gone non-finite: where, the last finite loss, what was kept, the fix.
    ``step``: "iteration 12" or "step 40"; ``kept``: the folder of the last good checkpoint, if any."""
    last = f"; the last finite loss was {losses[-1]:.4g}" if losses else ""
    saved = f"; the checkpoints in {kept} (all finite) are kept" if kept else ""
    return UserError(f"the run diverged at {step}: {what}{last}{saved}; no result was written; {fix}")
