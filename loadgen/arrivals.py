"""Arrival processes: when each request of an open-loop run is sent (offsets from the start, in seconds).

Poisson at rate λ; Gamma gaps with a burstiness factor (shape = burstiness, mean gap = 1/λ; 1 is Poisson,
below 1 burstier); constant spacing. A closed loop has no schedule: N requests stay in flight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class ArrivalKind(Enum):
    POISSON = "poisson"
    GAMMA = "gamma"
    CONSTANT = "constant"
    CLOSED = "closed"  # a fixed number of requests in flight


@dataclass(frozen=True, slots=True)
class Arrivals:
    kind: ArrivalKind = ArrivalKind.POISSON
    rate: float = 2.0  # requests per second (open loop)
    burstiness: float = 1.0  # gamma shape
    concurrency: int = 4  # closed loop: requests in flight

    def __post_init__(self) -> None:
        if self.kind is ArrivalKind.CLOSED:
            if self.concurrency < 1:
                raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        elif self.rate <= 0:
            raise ValueError(f"rate must be > 0 requests/s, got {self.rate}")
        if self.burstiness <= 0:
            raise ValueError(f"burstiness must be > 0, got {self.burstiness}")

    @property
    def open_loop(self) -> bool:
        return self.kind is not ArrivalKind.CLOSED

    def offsets(self, rng: random.Random, count: int) -> list[float]:
        """Send times of `count` requests, the first at 0."""
        assert self.open_loop
        times, now = [], 0.0
        for _ in range(count):
            times.append(now)
            now += self._gap(rng)
        return times

    def _gap(self, rng: random.Random) -> float:
        if self.kind is ArrivalKind.POISSON:
            return rng.expovariate(self.rate)
        if self.kind is ArrivalKind.GAMMA:
            return rng.gammavariate(self.burstiness, 1.0 / (self.rate * self.burstiness))
        return 1.0 / self.rate

    def describe(self) -> str:
        if self.kind is ArrivalKind.CLOSED:
            return f"closed loop, {self.concurrency} in flight"
        if self.kind is ArrivalKind.GAMMA:
            return f"gamma at {self.rate:g} req/s, burstiness {self.burstiness:g}"
        return f"{self.kind.value} at {self.rate:g} req/s"
