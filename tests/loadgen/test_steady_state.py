"""Overload detection: a level backlog is a steady state; a growing one, or timeouts, is overload. And how long a
run's sends loaded it."""

from __future__ import annotations

import pytest

from apps.loadgen_cli import sends_cover
from apps.sweep import max_rate_meeting_target
from loadgen.records import RequestRecord
from loadgen.steady_state import steady_state


def _record(index: int, sent: float, ended: float, status: str = "ok") -> RequestRecord:
    return RequestRecord(index, "chat", 10, 10, sent, ended, [ended], [10], status)


def test_a_deployment_that_keeps_up_is_steady() -> None:
    # Ten requests a second, each served in 0.5 s: five in flight, all through the window.
    records = [_record(i, i * 0.1, i * 0.1 + 0.5) for i in range(100)]
    state = steady_state(records, window=10.0)
    assert not state.overloaded and state.reason == ""
    assert 4.5 <= state.backlog_early <= 5.5 and 4.5 <= state.backlog_late <= 5.5


def test_a_growing_queue_is_overload() -> None:
    # Ten requests a second into a server that finishes five a second, in order: the queue grows all along.
    records = [_record(i, i * 0.1, 0.2 * (i + 1)) for i in range(100)]
    state = steady_state(records, window=10.0)
    assert state.overloaded and "the backlog grew" in state.reason
    assert state.backlog_late > 2 * state.backlog_early
    assert state.in_flight_at_end == 50  # all 100 were sent by 10 s, and the first 50 had ended


def test_timeouts_are_overload() -> None:
    records = [_record(i, i * 0.1, i * 0.1 + 0.5) for i in range(99)] + [_record(99, 9.9, 40.0, "timeout")]
    state = steady_state(records, window=10.0)
    assert state.overloaded and state.timeouts == 1 and "still running" in state.reason


def test_an_overloaded_rate_never_counts_as_holding_the_target() -> None:
    steady, overloaded = {"overloaded": False}, {"overloaded": True}
    sweep = {
        1.0: {"slo_attainment": 0.99, "steady_state": steady},
        2.0: {"slo_attainment": 0.95, "steady_state": overloaded},  # attainment high only because the run was short
        3.0: {"slo_attainment": 0.50, "steady_state": overloaded},
    }
    assert max_rate_meeting_target(sweep) == (1.0, False)


def test_evenly_spaced_sends_load_one_gap_past_the_last() -> None:
    # 30 requests at 2 req/s, the last sent at 14.5 s, load a 15 s run: `pdsim loadgen` says nothing of its count.
    assert sends_cover(14.5, 30) == pytest.approx(15.0)
    assert sends_cover(14.5, 30) >= 15.0 * (1 - 1e-9)
    assert sends_cover(7.0, 15) < 15.0  # half the duration: it warns
    assert sends_cover(0.0, 1) == 0.0
