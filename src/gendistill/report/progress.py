"""Progress bars that read well both in a terminal and in a log file.

In a terminal this is tqdm as usual. When stderr is a file or a pipe (a background run with its output
redirected to a log), tqdm's carriage-return redraws would pile up into one endless line; there the bar
writes one plain line at most every ``LOG_EVERY`` seconds instead.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

LOG_EVERY = 30.0  # seconds between lines when writing to a log file
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence every bar of this process (``--quiet``), also those deep inside a step such as a teacher's
    training, which no caller passes a flag down to."""
    global _quiet
    _quiet = quiet


class _Lines:
    """A file for tqdm that turns each redraw into one line."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(tqdm):
    """In a log, a bar's last line is its final state (kept even where a terminal bar would vanish), and a
    state is written once: closing right after a timed line at 100% does not repeat it."""

    _shown: float = -1

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self.n == self._shown:
            return True
        self._shown = self.n
        return super().display(msg, pos)


def progress(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm(*args, **kwargs)``, as lines every ``LOG_EVERY`` s when stderr is not a terminal."""
    stream = kwargs.pop("file", sys.stderr)
    kwargs["disable"] = kwargs.get("disable", False) or _quiet
    if hasattr(stream, "isatty") and stream.isatty():
        return tqdm(*args, file=stream, dynamic_ncols=True, **kwargs)
    kwargs["leave"] = True
    return _LogBar(*args, file=_Lines(stream), mininterval=LOG_EVERY, maxinterval=LOG_EVERY, ncols=100, **kwargs)
