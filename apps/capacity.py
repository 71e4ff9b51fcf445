"""Capacity by search: the highest arrival rate at which an arm holds the SLO target, bracketed by bisection.

The search starts from what the sweep found: the highest swept rate that holds (with every lower one) and the
next swept rate that does not. Each probe runs the bracket's midpoint and moves one end to it, until the bracket
is within `tolerance` of its lower end or `max_probes` are spent. With no swept rate holding it halves the lowest
rate; with every swept rate holding it doubles the highest (AIPerf's SLA search and vLLM's sweep do the same).

A probe is one run, shorter than a sweep run (`probe_duration`): the search needs a verdict per rate, not its
latency distribution, and it runs after the sweep on the cluster the sweep used. It holds when
`apps.sweep.holds_target` says so: ≥ 90% SLO attainment in a steady state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from apps.sweep import Summary, holds_target, max_rate_holding, overloaded

_SIGNIFICANT = 4  # probe rates are rounded to this many digits, so their directories have short names


@dataclass(frozen=True, slots=True)
class CapacitySearch:
    tolerance: float = 0.05  # stop when (high - low) <= tolerance * low
    # From the sweep's bracket of 1-1.5 req/s the search needs 4 probes; 6 leave room to widen a bracket once.
    max_probes: int = 6
    # Each probe sends for this long. Shorter than a sweep run (30 s): at ~1 req/s, 20 s is still ~20 requests,
    # and on the 2-core machine the defaults are for, 6 probes per arm keep `--find-capacity` within minutes.
    probe_duration: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise ValueError(f"capacity tolerance must be between 0 and 1, got {self.tolerance}")
        if self.max_probes < 1:
            raise ValueError(f"max probes must be >= 1, got {self.max_probes}")
        if self.probe_duration <= 0:
            raise ValueError(f"probe duration must be > 0 s, got {self.probe_duration}")


@dataclass(frozen=True, slots=True)
class Probe:
    rate: float
    holds: bool
    attainment: float
    overloaded: bool
    offered: float  # the rate really sent at


@dataclass(frozen=True, slots=True)
class Capacity:
    low: float | None  # the highest rate seen to hold; None: none did
    high: float | None  # the lowest rate above it seen to fail; None: none did
    start: tuple[float | None, float | None]  # the bracket the search started from (from the sweep)
    probes: tuple[Probe, ...]
    tolerance: float

    @property
    def converged(self) -> bool:
        return self.low is not None and self.high is not None and self.high - self.low <= self.tolerance * self.low

    def describe(self) -> str:
        probes = ", ".join(
            f"{p.rate:g} ({p.attainment:.0%}{', overloaded' if p.overloaded else ''}: "
            f"{'holds' if p.holds else 'fails'})"
            for p in self.probes
        )
        count = len(self.probes)
        runs = f"{count} probe{'' if count == 1 else 's'}: {probes}" if self.probes else "no probes needed"
        if self.low is None and self.high is None:
            found = "not measured"
        elif self.low is None:
            found = f"below {self.high:g} req/s (no rate held)"
        elif self.high is None:
            found = f"at least {self.low:g} req/s (every rate held)"
        else:
            found = f"[{self.low:g}, {self.high:g}] req/s"
        within = f"within {self.tolerance:.0%}" if self.converged else f"**not** within {self.tolerance:.0%}"
        return f"{found}, {within}; {runs}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "converged": self.converged}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Capacity:
        probes = tuple(Probe(**p) for p in data["probes"])
        low, high = data["start"]
        return Capacity(data["low"], data["high"], (low, high), probes, data["tolerance"])


def probe_of(rate: float, summary: Summary) -> Probe:
    return Probe(rate, holds_target(summary), summary["slo_attainment"], overloaded(summary),
                 float(summary["workload"]["offered_rate"]))  # fmt: skip


def initial_bracket(swept: Mapping[float, bool]) -> tuple[float | None, float | None]:
    """The highest swept rate that holds with every rate below it, and the next swept rate that does not."""
    low, _ = max_rate_holding(swept)
    failing = [r for r, ok in swept.items() if not ok and (low is None or r > low)]
    return low, min(failing, default=None)


def _next_rate(low: float | None, high: float | None, start: float) -> float:
    if low is None and high is None:
        rate = start
    elif low is None:
        assert high is not None
        rate = high / 2
    elif high is None:
        rate = low * 2
    else:
        rate = (low + high) / 2
    return float(f"{rate:.{_SIGNIFICANT}g}")


def find_capacity(
    run: Callable[[float], Summary], search: CapacitySearch, swept: Mapping[float, bool], start: float
) -> Capacity:
    """Bisect with `run(rate)` (one probe run, its summary) from the bracket `swept` gives; `start` is the first
    probe when nothing was swept."""
    low, high = initial_bracket(swept)
    bracket = (low, high)
    probes: list[Probe] = []
    while len(probes) < search.max_probes:
        if low is not None and high is not None and high - low <= search.tolerance * low:
            break
        rate = _next_rate(low, high, start)
        if rate in (low, high):  # rounding cannot split the bracket further
            break
        probe = probe_of(rate, run(rate))
        probes.append(probe)
        if probe.holds:
            low = rate
        else:
            high = rate
    return Capacity(low, high, bracket, tuple(probes), search.tolerance)


def write_capacity(directory: Path, capacity: Capacity) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "search.json").write_text(json.dumps(capacity.to_json(), indent=2) + "\n")


def read_capacity(directory: Path) -> Capacity | None:
    path = directory / "search.json"
    return Capacity.from_json(json.loads(path.read_text())) if path.exists() else None
