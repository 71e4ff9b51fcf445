"""Time dilation: wall seconds per emulated second, the one rule every holder of it checks (emulated nodes, the
load generator's clock)."""

from __future__ import annotations

import math


def check_dilation(dilation: float) -> None:
    """Refuse, naming it, a dilation that is not a finite number >= 1 (1: real time)."""
    if not (math.isfinite(dilation) and dilation >= 1):
        raise ValueError(f"dilation must be a number >= 1, got {dilation}")
