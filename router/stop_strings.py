"""Stop strings: end a completion where its text first contains one of them, the stop string left out (or kept,
with vLLM's `include_stop_str_in_output`).

Text streams in pieces, so a stop string may span two of them: the tail of the text that could still grow into
a stop string is held back until the next piece settles it.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopStrings:
    def __init__(self, stops: Sequence[str], include: bool = False) -> None:
        assert stops and all(stops), "stop strings are non-empty"
        self._stops = tuple(stops)
        self._include = include
        self._longest = max(len(s) for s in self._stops)
        self._held = ""

    def feed(self, text: str, active: bool = True) -> tuple[str, bool]:
        """The text that is safe to emit now, and whether a stop string ended the completion (the text is cut
        before it, or after it when included; anything after is dropped). While not `active` (vLLM's min_tokens
        not reached yet) no stop string ends it."""
        text = self._held + text
        if not active:
            self._held = ""
            return text, False
        found = [(i, len(s)) for i, s in ((text.find(s), s) for s in self._stops) if i >= 0]
        if found:
            self._held = ""
            start, length = min(found)
            return text[: start + length if self._include else start], True
        keep = self._partial_match(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep], False

    def flush(self) -> str:
        """What was held back, once the completion ended for another reason."""
        held, self._held = self._held, ""
        return held

    def _partial_match(self, text: str) -> int:
        """Length of the longest tail of `text` that begins some stop string."""
        for length in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0
