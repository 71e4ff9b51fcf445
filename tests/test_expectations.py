"""The literature checks: each verdict follows the numbers, including a stall that only the longest gap shows."""

from __future__ import annotations

from typing import Any

from apps.expectations import CHUNKED, PREFILL_FIRST, expectations, verdict
from loadgen.metrics import stats


def _summary(itl_ms: list[float]) -> dict[str, Any]:
    itl = stats([v / 1e3 for v in itl_ms])
    flat = stats([0.1])
    return {"itl_s": itl, "ttft_s": flat, "tpot_s": flat, "e2el_s": flat, "goodput": 1.0, "workload": {"devices": 2}}


def test_a_rare_stall_is_invisible_at_p99_but_the_longest_gap_shows_it() -> None:
    # 1,000 gaps of 20 ms; prefill-first has 5 of them (0.5%) stalled for 1.5 s behind a whole prefill.
    chunked = _summary([20.0] * 995 + [40.0] * 5)
    prefill_first = _summary([20.0] * 995 + [1500.0] * 5)
    main = {CHUNKED: [chunked], PREFILL_FIRST: [prefill_first]}
    lines = expectations(main, {a: {1.0: s} for a, s in main.items()})
    p99 = next(line for line in lines if "ITL p99 chunked" in line)
    longest = next(line for line in lines if "ITL max" in line)
    assert p99.endswith("20 ms vs 20 ms — does **not** hold here.")
    assert longest.endswith("40 ms vs 1500 ms — holds here.")


def test_stats_keep_the_maximum() -> None:
    assert stats([1.0, 3.0, 2.0])["max"] == 3.0
    assert set(stats([])) == {"mean", "median", "p90", "p99", "max", "std"}


def test_verdict_calls_small_differences_a_tie() -> None:
    assert verdict(1.05, 1.0).startswith("no clear difference")
    assert verdict(2.0, 1.0) == "holds here"
    assert verdict(1.0, 2.0) == "does **not** hold here"
