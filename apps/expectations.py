"""The report's last section: what the literature expects of each arm, checked against this run's numbers.

- Colocated prefill-first (the 2023 baseline): a long prefill runs whole and every running decode waits behind
  it, so its ITL tail is long (DistServe, Splitwise).
- Colocated with chunked prefill (Sarathi-Serve; vLLM's default): decodes ride along with bounded prefill chunks,
  which cuts that stall; prefills spread over several steps, which costs some TTFT.
- Disaggregated: decode never waits for a prefill, so TPOT stays low and flat as load grows; every prompt queues
  at the prefill pool and its KV must move, which costs TTFT. Its advantage must show against chunked colocated,
  the baseline it has to beat, in goodput per device at the SLOs.

Each statement is made only for the arms the run has, and its verdict comes from the numbers.
"""

from __future__ import annotations

import math
from typing import Any

CHUNKED, PREFILL_FIRST, DISAGGREGATED = "colocated", "colocated-prefill-first", "disaggregated"
VERDICT_MARGIN = 0.1  # relative differences smaller than this are reported as no clear difference

Runs = dict[str, dict[float, dict[str, Any]]]


def _ms(seconds: float) -> str:
    return "n/a" if seconds is None or math.isnan(seconds) else f"{seconds * 1e3:.0f}"


def verdict(expected_larger: float, expected_smaller: float) -> str:
    """Whether `expected_larger` exceeds `expected_smaller`, calling differences within the margin a tie:
    one run on a shared machine does not resolve them."""
    if any(math.isnan(v) for v in (expected_larger, expected_smaller)):
        return "not measurable here"
    scale = max(abs(expected_larger), abs(expected_smaller), 1e-12)
    if abs(expected_larger - expected_smaller) <= VERDICT_MARGIN * scale:
        return f"no clear difference here (within {VERDICT_MARGIN:.0%})"
    return "holds here" if expected_larger > expected_smaller else "does **not** hold here"


def _stat(summary: dict[str, Any], metric: str, stat: str) -> float:
    return float(summary[f"{metric}_s"][stat])


def _compare(main: dict[str, Any], metric: str, stat: str, larger: str, smaller: str, claim: str) -> str:
    a, b = _stat(main[larger], metric, stat), _stat(main[smaller], metric, stat)
    return f"- {claim}: {metric.upper()} {stat} {larger} {_ms(a)} ms vs {smaller} {_ms(b)} ms — {verdict(a, b)}."


def expectations(main: dict[str, dict[str, Any]], runs: Runs) -> list[str]:
    """One line per expectation whose arms this run has."""
    has = set(main)
    out = []
    if {PREFILL_FIRST, DISAGGREGATED} <= has:
        claim = "Prefill-first colocated decodes stall behind long prefills, so its ITL tail is longer"
        out.append(_compare(main, "itl", "p99", PREFILL_FIRST, DISAGGREGATED, claim))
    if {PREFILL_FIRST, CHUNKED} <= has:
        out.append(_halved(main, "p99", "ITL p99"))
        out.append(_halved(main, "max", "the longest decode stall (ITL max)"))
        out.append(_compare(main, "ttft", "median", CHUNKED, PREFILL_FIRST,
                            "Chunking spreads a prefill over several steps, which costs some TTFT"))  # fmt: skip
    colocated = [arm for arm in (CHUNKED, PREFILL_FIRST) if arm in has]
    if DISAGGREGATED in has:
        for arm in colocated:
            out.append(_compare(main, "tpot", "p90", arm, DISAGGREGATED, f"Disaggregation protects TPOT against {arm}"))
            claim = f"Disaggregation pays in TTFT against {arm} (prompts queue at the prefill pool)"
            out.append(_compare(main, "ttft", "median", DISAGGREGATED, arm, claim))
        out += _flatness(runs, [*colocated, DISAGGREGATED])
    if {CHUNKED, DISAGGREGATED} <= has:
        out.append(_per_device_goodput(main))
    out.append(
        "- In pdsim the first token is streamed as soon as the prefill samples it; the KV transfer happens before "
        "the second token, so it shows in ITL/TPOT rather than TTFT."
    )
    return out


def _halved(main: dict[str, dict[str, Any]], stat: str, label: str) -> str:
    """Sarathi-Serve's claim, checked on one ITL statistic: chunked at most half of prefill-first. p99 sees the
    stall only when stalled gaps are at least 1% of all gaps; the max sees it whenever one happened."""
    chunked = float(main[CHUNKED]["itl_s"].get(stat, math.nan))
    whole = float(main[PREFILL_FIRST]["itl_s"].get(stat, math.nan))
    if math.isnan(chunked) or math.isnan(whole):
        verdict_text = "not measurable here"
    else:
        verdict_text = "holds here" if 2 * chunked <= whole else "does **not** hold here"
    return (
        f"- Chunked prefill removes that stall (Sarathi-Serve), so {label} chunked is at most half of "
        f"prefill-first's: {_ms(chunked)} ms vs {_ms(whole)} ms — {verdict_text}."
    )


def _flatness(runs: Runs, arms: list[str]) -> list[str]:
    rates = sorted(set.intersection(*(set(runs[a]) for a in arms)))
    if len(rates) < 2:
        return []
    low, high = rates[0], rates[-1]
    rise = {a: _stat(runs[a][high], "tpot", "median") - _stat(runs[a][low], "tpot", "median") for a in arms}
    return [
        f"- Disaggregated TPOT stays flatter as load grows: median TPOT rises by {_ms(rise[DISAGGREGATED])} ms from "
        f"{low:g} to {high:g} req/s disaggregated vs {_ms(rise[arm])} ms {arm} — "
        f"{verdict(rise[arm], rise[DISAGGREGATED])}."
        for arm in arms
        if arm != DISAGGREGATED
    ]


def _per_device_goodput(main: dict[str, dict[str, Any]]) -> str:
    per_device = {a: main[a]["goodput"] / main[a]["workload"]["devices"] for a in (CHUNKED, DISAGGREGATED)}
    return (
        f"- Disaggregation must beat chunked colocated on goodput per device: {per_device[DISAGGREGATED]:.2f} vs "
        f"{per_device[CHUNKED]:.2f} req/s per device at the main rate — "
        f"{verdict(per_device[DISAGGREGATED], per_device[CHUNKED])}."
    )
