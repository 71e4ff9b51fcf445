"""Whether a run reached a steady state or its load outran the deployment (overload).

A deployment that keeps up finishes requests about as fast as they arrive: the backlog (requests sent and not
yet ended) stays level through the send window. An overloaded one queues: the backlog grows for as long as
sending lasts, and requests are still in flight, or time out, when it stops. The figures of such a run describe
a queue that never settled, and they depend on how long the run was, so a report marks them and does not use
them to say what rate a deployment holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from loadgen.records import RequestRecord

_SAMPLES = 48  # backlog samples across the send window
# The backlog must both double and grow by this many requests between the window's second and last quarter:
# a level backlog fluctuates by a few requests (Poisson arrivals), a queue grows without bound.
_MIN_GROWTH = 4.0


@dataclass(frozen=True, slots=True)
class SteadyState:
    overloaded: bool
    backlog_early: float  # mean requests in flight over the send window's second quarter
    backlog_late: float  # the same over its last quarter
    in_flight_at_end: int  # requests sent and not ended when sending stopped
    timeouts: int
    reason: str  # why it was called overloaded; empty when it was not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _backlog(records: Sequence[RequestRecord], t: float) -> int:
    return sum(1 for r in records if r.sent <= t < r.ended)


def _mean_backlog(records: Sequence[RequestRecord], window: float, start: float, end: float) -> float:
    times = [window * (start + (end - start) * (i + 0.5) / _SAMPLES) for i in range(_SAMPLES)]
    return sum(_backlog(records, t) for t in times) / len(times)


def steady_state(records: Sequence[RequestRecord], window: float) -> SteadyState:
    """Judge a run whose requests were sent over `window` seconds (times relative to the run's start)."""
    timeouts = sum(1 for r in records if r.status == "timeout")
    if window <= 0 or not records:
        return SteadyState(timeouts > 0, 0.0, 0.0, 0, timeouts, "requests timed out" if timeouts else "")
    early = _mean_backlog(records, window, 0.25, 0.5)
    late = _mean_backlog(records, window, 0.75, 1.0)
    at_end = _backlog(records, window)
    reasons = []
    if timeouts:
        reasons.append(f"{timeouts} requests were still running when the drain ended")
    if late >= 2 * early and late - early >= _MIN_GROWTH:
        reasons.append(f"the backlog grew from {early:.1f} to {late:.1f} requests in flight while sending")
    return SteadyState(bool(reasons), early, late, at_end, timeouts, "; ".join(reasons))
