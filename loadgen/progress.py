"""A one-line progress bar on stderr while a run goes on."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr  # looked up now, not at import: tests and callers may redirect it
        self.sent = self.done = self.failed = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._interactive = self.stream.isatty()

    def note(self, text: str) -> None:
        """A line of its own above the bar."""
        self.stream.write(f"{self.label}{text}\n")
        self.stream.flush()

    def on_sent(self) -> None:
        self.sent += 1
        self.draw()

    def on_done(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        self.draw()

    def draw(self, final: bool = False) -> None:
        now = time.perf_counter()
        # Redraw a terminal often; a log file (CI, make) gets a line every few seconds.
        if not final and now - self._last_draw < (0.2 if self._interactive else 5.0):
            return
        self._last_draw = now
        filled = int(self.width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"{self.label}[{bar}] {self.done}/{self.total} done, {self.sent} sent, {self.failed} failed or timed out, "
            f"{now - self._start:5.1f} s"
        )
        end = "\n" if final or not self._interactive else ""
        self.stream.write(("\r" if self._interactive else "") + line + end)
        self.stream.flush()
