"""Stop strings end the text before the first one, even when it arrives split across pieces."""

from __future__ import annotations

import pytest

from router.stop_strings import StopStrings


def _run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopStrings(stops)
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


@pytest.mark.parametrize(
    ("stops", "pieces", "expected"),
    [
        (["END"], ["abc", "dEN", "Dxyz"], ("abcd", True)),  # split across pieces
        (["END"], ["abcEND", "more"], ("abc", True)),
        (["END"], ["abcE", "NX", "y"], ("abcENXy", False)),  # a false start is emitted once settled
        (["END"], ["abcEN"], ("abcEN", False)),  # held back, then flushed at the end
        (["xy", "b"], ["axyb"], ("a", True)),  # the earliest of several
        (["aab"], ["aa", "aab"], ("aa", True)),  # overlapping prefixes
    ],
)
def test_stop_strings(stops: list[str], pieces: list[str], expected: tuple[str, bool]) -> None:
    assert _run(stops, pieces) == expected


def test_text_that_cannot_start_a_stop_string_is_not_held() -> None:
    matcher = StopStrings(["END"])
    assert matcher.feed("abc") == ("abc", False)
    assert matcher.feed("xE") == ("x", False)
