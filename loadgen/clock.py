"""A run's clock: seconds since the run started, in the cluster's emulated time.

An emulated cluster runs `dilation` wall seconds per emulated second (`pdsim up --dilation`): the load generator
then sends on an emulated schedule (its gaps stretched by the dilation on the wall clock), and every time it
records is emulated. Token times come from the nodes' emission stamps when the router forwards them
(`GenerateResponse.token_times`, this host's monotonic clock, which `time.perf_counter()` reads): a token that
reaches the client late, behind Python's own overheads, still counts from when it was produced. With dilation 1
(real devices) the clock is the client's own and stamps are not used: the figures are what the client saw.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pdsim.core.emulation.dilation import check_dilation


@dataclass(frozen=True, slots=True)
class RunClock:
    start: float  # time.perf_counter() when the run started
    dilation: float = 1.0

    def __post_init__(self) -> None:
        check_dilation(self.dilation)

    def now(self) -> float:
        """Seconds since the start, emulated."""
        return (time.perf_counter() - self.start) / self.dilation

    def wall_at(self, seconds: float) -> float:
        """The time.perf_counter() at which `seconds` (emulated) after the start falls."""
        return self.start + seconds * self.dilation

    def wall(self, seconds: float) -> float:
        """An emulated duration on the wall clock (a timeout, a drain)."""
        return seconds * self.dilation

    def token_time(self, stamps: Sequence[float]) -> float:
        """When a message's tokens were produced: the last node stamp on an emulated cluster, else now."""
        if self.dilation > 1 and stamps:
            return (stamps[-1] - self.start) / self.dilation
        return self.now()
