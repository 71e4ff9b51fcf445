"""The report's last section: what the literature expects of each arm, checked against this run's numbers.

- Colocated prefill-first (the 2023 baseline): a long prefill runs whole and every running decode waits behind
  it, so its ITL tail is long (DistServe, Splitwise).
- Colocated with chunked prefill (Sarathi-Serve; vLLM's default): decodes ride along with bounded prefill chunks,
  which cuts that stall; prefills spread over several steps, which costs some TTFT.
- Disaggregated: decode never waits for a prefill, so TPOT stays low and flat as load grows; every prompt queues
  at the prefill pool and its KV must move, which costs TTFT. Its advantage must show against chunked colocated,
  the baseline it has to beat, in goodput per device at the SLOs.

Each statement is made only for the arms the run has, and its verdict comes from the numbers: with repeated runs
a difference is clear only when the two figures' 95% intervals do not overlap; from a single run (no interval) a
difference within 10% is called no clear difference.
"""

from __future__ import annotations

from apps.intervals import Estimate, as_estimate, estimate
from apps.report_tables import Runs, latency, ms
from apps.sweep import Summary

CHUNKED, PREFILL_FIRST, DISAGGREGATED = "colocated", "colocated-prefill-first", "disaggregated"
VERDICT_MARGIN = 0.1  # single runs: relative differences smaller than this are reported as no clear difference

Main = dict[str, list[Summary]]  # arm -> its repeats at the main rate


def verdict(expected_larger: Estimate | float, expected_smaller: Estimate | float) -> str:
    """Whether `expected_larger` exceeds `expected_smaller`. Figures with intervals (repeated runs) tie when the
    intervals overlap; single runs tie within the margin: one run on a shared machine does not resolve them."""
    larger, smaller = as_estimate(expected_larger), as_estimate(expected_smaller)
    if not (larger.measurable and smaller.measurable):
        return "not measurable here"
    if larger.has_interval and smaller.has_interval:
        if larger.overlaps(smaller):
            return "no clear difference here (the 95% intervals overlap)"
    else:
        scale = max(abs(larger.median), abs(smaller.median), 1e-12)
        if abs(larger.median - smaller.median) <= VERDICT_MARGIN * scale:
            return f"no clear difference here (within {VERDICT_MARGIN:.0%}, one run)"
    return "holds here" if larger.median > smaller.median else "does **not** hold here"


def _compare(main: Main, metric: str, stat: str, larger: str, smaller: str, claim: str) -> str:
    a, b = latency(main[larger], metric, stat), latency(main[smaller], metric, stat)
    return (
        f"- {claim}: {metric.upper()} {stat} {larger} {a.format(ms)} ms vs {smaller} {b.format(ms)} ms "
        f"— {verdict(a, b)}."
    )


def expectations(main: Main, runs: Runs) -> list[str]:
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


def _halved(main: Main, stat: str, label: str) -> str:
    """Sarathi-Serve's claim, checked on one ITL statistic: chunked at most half of prefill-first. p99 sees the
    stall only when stalled gaps are at least 1% of all gaps; the max sees it whenever one happened. With
    intervals it holds when all of chunked's doubled interval lies below prefill-first's, and fails when all of
    it lies above."""
    chunked, whole = latency(main[CHUNKED], "itl", stat), latency(main[PREFILL_FIRST], "itl", stat)
    if not (chunked.measurable and whole.measurable):
        verdict_text = "not measurable here"
    elif 2 * chunked.high <= whole.low:
        verdict_text = "holds here"
    elif 2 * chunked.low > whole.high:
        verdict_text = "does **not** hold here"
    else:
        verdict_text = "no clear difference here (the 95% intervals overlap)"
    return (
        f"- Chunked prefill removes that stall (Sarathi-Serve), so {label} chunked is at most half of "
        f"prefill-first's: {chunked.format(ms)} ms vs {whole.format(ms)} ms — {verdict_text}."
    )


def _flatness(runs: Runs, arms: list[str]) -> list[str]:
    rates = sorted(set.intersection(*(set(runs[a]) for a in arms)))
    if len(rates) < 2:
        return []
    low, high = rates[0], rates[-1]
    rise = {a: _rise(runs[a][low], runs[a][high]) for a in arms}
    return [
        f"- Disaggregated TPOT stays flatter as load grows: median TPOT rises by {rise[DISAGGREGATED].format(ms)} ms "
        f"from {low:g} to {high:g} req/s disaggregated vs {rise[arm].format(ms)} ms {arm} — "
        f"{verdict(rise[arm], rise[DISAGGREGATED])}."
        for arm in arms
        if arm != DISAGGREGATED
    ]


def _rise(low: list[Summary], high: list[Summary]) -> Estimate:
    """Median TPOT at the high rate minus at the low one, repeat by repeat (repeat k has the same seed at both)."""
    return estimate([h["tpot_s"]["median"] - lo["tpot_s"]["median"] for lo, h in zip(low, high, strict=False)])


def _per_device_goodput(main: Main) -> str:
    per_device = {
        a: estimate([s["goodput"] / s["workload"]["devices"] for s in main[a]]) for a in (CHUNKED, DISAGGREGATED)
    }
    disaggregated, chunked = (per_device[a].format(lambda v: f"{v:.2f}") for a in (DISAGGREGATED, CHUNKED))
    return (
        f"- Disaggregation must beat chunked colocated on goodput per device: {disaggregated} vs {chunked} req/s "
        f"per device at the main rate — {verdict(per_device[DISAGGREGATED], per_device[CHUNKED])}."
    )
