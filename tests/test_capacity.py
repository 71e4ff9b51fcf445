"""The capacity search on synthetic deployments (no cluster): it brackets the highest rate holding 90% SLO
attainment within 5% in a bounded number of probes, whatever the sweep found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apps.capacity import CapacitySearch, find_capacity, initial_bracket, read_capacity, write_capacity


def _deployment(capacity: float, overload_at: float | None = None) -> tuple[Callable[[float], dict[str, Any]],
                                                                            list[float]]:  # fmt: skip
    """A deployment whose attainment falls linearly past `capacity` (90% exactly there); from `overload_at` on
    it is overloaded, whatever its attainment. Returns the probe function and the rates it was asked for."""
    asked: list[float] = []

    def run(rate: float) -> dict[str, Any]:
        asked.append(rate)
        attainment = 1.0 if rate <= capacity else max(0.0, 0.9 - (rate - capacity) / capacity)
        over = overload_at is not None and rate >= overload_at
        return {"slo_attainment": attainment, "steady_state": {"overloaded": over},
                "workload": {"offered_rate": rate}}  # fmt: skip

    return run, asked


SEARCH = CapacitySearch(tolerance=0.05, max_probes=6)


@pytest.mark.parametrize("true_capacity", [1.07, 1.26, 1.49])
def test_from_the_sweeps_bracket_it_converges_within_five_percent(true_capacity: float) -> None:
    run, asked = _deployment(true_capacity)
    swept = {0.5: True, 1.0: True, 1.5: False, 2.0: False}
    found = find_capacity(run, SEARCH, swept, start=1.5)
    assert found.start == (1.0, 1.5) and found.converged
    assert found.low is not None and found.high is not None
    assert found.low <= true_capacity < found.high and found.high - found.low <= 0.05 * found.low
    assert len(asked) == len(found.probes) <= 4  # log2(0.5 / 0.05) from a bracket 50% wide
    assert all(1.0 < r < 1.5 for r in asked)  # never re-runs what the sweep measured


def test_overload_counts_as_failing_even_with_high_attainment() -> None:
    run, _ = _deployment(10.0, overload_at=1.2)  # attainment stays 100%, but the backlog grows from 1.2 on
    found = find_capacity(run, SEARCH, {1.0: True, 2.0: False}, start=1.5)
    assert found.converged and found.low is not None and found.low < 1.2 <= (found.high or 0)
    assert any(p.overloaded and not p.holds and p.attainment == 1.0 for p in found.probes)


def test_holding_at_the_top_doubles_until_it_fails_then_bisects() -> None:
    run, asked = _deployment(5.3)
    found = find_capacity(run, SEARCH, {1.0: True, 2.0: True}, start=2.0)
    assert found.start == (2.0, None)
    assert asked == [4.0, 8.0, 6.0, 5.0, 5.5, 5.25]  # doubling finds a failing rate, then bisection
    assert found.converged and (found.low, found.high) == (5.25, 5.5)
    assert found.describe().startswith("[5.25, 5.5] req/s, within 5%; 6 probes: 4 (100%: holds), 8 (39%: fails)")


def test_the_number_of_probes_is_bounded() -> None:
    run, asked = _deployment(5.3)
    found = find_capacity(run, CapacitySearch(max_probes=4), {1.0: True, 2.0: True}, start=2.0)
    assert len(asked) == 4 and (found.low, found.high) == (5.0, 6.0)
    assert not found.converged and "**not** within 5%" in found.describe()


def test_never_holding_halves_down_and_says_so() -> None:
    run, asked = _deployment(0.01)
    found = find_capacity(run, CapacitySearch(max_probes=3), {0.5: False, 1.0: False}, start=1.0)
    assert asked == [0.25, 0.125, 0.0625] and found.low is None and found.high == 0.0625
    assert found.describe().startswith("below 0.0625 req/s (no rate held)")


def test_without_a_sweep_it_starts_at_the_main_rate(tmp_path: Path) -> None:
    run, asked = _deployment(1.3)
    found = find_capacity(run, SEARCH, {}, start=1.5)
    assert asked[0] == 1.5 and found.converged and found.low is not None and found.low <= 1.3
    write_capacity(tmp_path, found)
    assert read_capacity(tmp_path) == found and read_capacity(tmp_path / "absent") is None
    one = find_capacity(run, CapacitySearch(max_probes=1), {}, start=1.0)
    assert one.describe() == "at least 1 req/s (every rate held), **not** within 5%; 1 probe: 1 (100%: holds)"


def test_the_initial_bracket_ignores_a_rate_that_passes_again_above_a_failure() -> None:
    assert initial_bracket({1.0: True, 1.5: False, 2.0: True}) == (1.0, 1.5)
    assert initial_bracket({1.0: False, 2.0: True}) == (None, 1.0)
    assert initial_bracket({1.0: True}) == (1.0, None)


def test_bad_search_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"capacity tolerance must be between 0 and 1, got 1\.5"):
        CapacitySearch(tolerance=1.5)
    with pytest.raises(ValueError, match="max probes must be >= 1, got 0"):
        CapacitySearch(max_probes=0)
