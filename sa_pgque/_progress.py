"""Progress of long CLI operations, on stderr.

On a terminal the line is redrawn in place (``replaying dead letters 1200/5000``);
elsewhere (a pipe, a log file, CI) only the final line is written, so logs
are not flooded with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_INTERVAL = 0.1
"""Seconds between two redraws of the line on a terminal."""


class Progress:
    """A counter towards ``total`` (``None``: unknown) for one labelled operation."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn_at = 0.0
        self._width = 0

    def advance(self, step: int = 1, *, note: str = "") -> None:
        """Count ``step`` more units done; redraw the line on a terminal (at most every 100 ms)."""
        self.count += step
        if not self.live:
            return
        now = time.monotonic()
        if now - self._drawn_at >= REDRAW_INTERVAL or self.count == self.total:
            self._drawn_at = now
            self._draw(self._text(note))

    def _text(self, note: str) -> str:
        counter = f"{self.count}/{self.total}" if self.total is not None else str(self.count)
        return f"{self.label} {counter}" + (f" {note}" if note else "")

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def done(self, message: str | None = None) -> None:
        """End the operation with a final line (``message``, or the counter), written everywhere."""
        text = message if message is not None else self._text("")
        if self.live:
            self._draw(text)
            self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
