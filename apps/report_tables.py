"""The report's tables and capacity lines (Markdown), from each arm's runs (`apps.sweep`).

Every figure is the median across a rate's repeats with its 95% bootstrap interval in brackets
(`apps.intervals`); from a single run it is that run's figure alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from apps.capacity import read_capacity
from apps.intervals import Estimate, estimate
from apps.sweep import Summary, Sweep, capacity_dir, holds, max_rate_holding, mostly_overloaded, overloaded

Runs = dict[str, Sweep]


def ms(seconds: float) -> str:
    return "n/a" if seconds is None or math.isnan(seconds) else str(round(seconds * 1e3))  # round: never "-0"


def of(repeats: Sequence[Summary], figure: Callable[[Summary], float]) -> Estimate:
    """One figure of each repeat, as a median with its interval."""
    return estimate([float(figure(s)) for s in repeats])


def offered(summary: Summary) -> float:
    """The rate requests were really sent at (a Poisson sample of 30 s strays from the nominal rate)."""
    return float(summary["workload"]["offered_rate"])


def key(name: str) -> Callable[[Summary], float]:
    return lambda s: float(s[name])


def _class_attainment(name: str) -> Callable[[Summary], float]:
    return lambda s: float(s["per_class"][name]["slo_attainment"])


def latency(repeats: Sequence[Summary], metric: str, stat: str) -> Estimate:
    return of(repeats, lambda s: s[f"{metric}_s"].get(stat, math.nan))


def _percent(value: Estimate) -> str:
    return value.scaled(100).format(lambda v: f"{v:.1f}%")


def _fixed(value: Estimate) -> str:
    return value.format(lambda v: f"{v:.2f}")


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def steadiness(repeats: Sequence[Summary]) -> str:
    if any("steady_state" not in s for s in repeats):
        return "not judged"
    over = [s for s in repeats if overloaded(s)]
    if not over:
        return "yes"
    share = f" in {len(over)} of {len(repeats)} repeats" if len(repeats) > 1 else ""
    return f"**overloaded**{share}: {over[0]['steady_state']['reason']}"


def main_table(arms: list[str], main: dict[str, list[Summary]]) -> list[str]:
    lines = ["| | " + " | ".join(arms) + " |", "|---" * (1 + len(arms)) + "|"]
    for metric in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("median", "p90", "p99"):
            lines.append(
                _row(f"{metric.upper()} {stat} (ms)", [latency(main[a], metric, stat).format(ms) for a in arms])
            )
        if metric == "itl":  # the longest decode stall: rarer than 1% of gaps, so p99 alone can miss it
            lines.append(_row("ITL max (ms)", [latency(main[a], "itl", "max").format(ms) for a in arms]))
    for figure, label in (
        ("request_throughput", "throughput (req/s)"),
        ("output_throughput", "output throughput (tokens/s)"),
        ("goodput", "goodput (req/s meeting SLO)"),
    ):
        lines.append(_row(label, [_fixed(of(main[a], key(figure))) for a in arms]))
    lines.append(_row("SLO attainment", [_percent(of(main[a], key("slo_attainment"))) for a in arms]))
    total = "completed / sent" + (" (all repeats)" if len(main[arms[0]]) > 1 else "")
    lines.append(_row(total, [f"{sum(s['completed'] for s in main[a])} / {sum(s['sent'] for s in main[a])}"
                              for a in arms]))  # fmt: skip
    lines.append(_row("offered rate as sent (req/s)", [_fixed(of(main[a], offered)) for a in arms]))
    lines.append(_row("steady state", [steadiness(main[a]) for a in arms]))
    for name in main[arms[0]][0]["per_class"]:
        cells = [_percent(of(main[a], _class_attainment(name))) for a in arms]
        lines.append(_row(f"SLO attainment, {name}", cells))
    return lines


def sweep_table(arms: list[str], runs: Runs) -> list[str]:
    columns = [f"{a} {c}" for a in arms for c in ("offered", "attainment", "goodput", "TPOT p99 (ms)")]
    lines = [_row("rate (req/s)", columns), "|---" * (1 + len(columns)) + "|"]
    for rate in sorted({r for a in arms for r in runs[a]}):
        cells: list[str] = []
        for arm in arms:
            repeats = runs[arm].get(rate)
            if repeats is None:
                cells += ["-"] * 4
                continue
            over = sum(overloaded(s) for s in repeats)
            flag = "" if not over else " (overloaded)" if len(repeats) == 1 else f" (overloaded {over}/{len(repeats)})"
            cells += [_fixed(of(repeats, offered)), _percent(of(repeats, key("slo_attainment"))) + flag,
                      _fixed(of(repeats, key("goodput"))), latency(repeats, "tpot", "p99").format(ms)]  # fmt: skip
        lines.append(_row(f"{rate:g}", cells))
    return lines


def swept_capacity(arms: list[str], runs: Runs, main: dict[str, list[Summary]]) -> list[str]:
    """Per arm, the highest swept rate up to which every rate holds the target, and per device."""
    lines = []
    for arm in arms:
        best, again = max_rate_holding({rate: holds(repeats) for rate, repeats in runs[arm].items()})
        devices = main[arm][0]["workload"]["devices"]
        if best is None:
            text = "none of the swept rates"
        else:
            sent = of(runs[arm][best], offered).median
            per_device = f"{best / devices:.2f} req/s per device ({sent / devices:.2f} as sent)"
            text = f"{best:g} req/s (sent at {sent:.2f}), {per_device}"
        if again:
            text += "; a higher rate passes again (a non-monotone sweep: noise, or runs too short to settle)"
        lines.append(f"- {arm} ({devices} devices): {text}")
    return lines


def searched_capacity(directory: Path, arms: list[str], experiment: dict[str, Any]) -> list[str]:
    """The capacity search's section (ending in a blank line), or nothing when no arm was searched."""
    found = {arm: read_capacity(capacity_dir(directory / arm)) for arm in arms}
    if not any(found.values()):
        return []
    search = experiment.get("capacity_search", {})
    lines = [
        "## Capacity by search",
        "",
        "After the sweep, each arm's rate was bisected from the sweep's bracket (the highest swept rate that held, "
        "the next that did not) until the highest rate holding ≥ 90% SLO attainment in a steady state was bracketed "
        f"within {search.get('tolerance', 0.05):.0%}, in at most {search.get('max_probes', '?')} probes. Each probe "
        f"is one run of {search.get('probe_duration', '?')} s at the first seed (not repeated), so a bracket is "
        "where this search's probes crossed the target, not a confidence interval; its runs are in "
        "`<arm>/capacity/rate-<r>/`.",
        "",
    ]
    for arm in arms:
        capacity = found[arm]
        lines.append(f"- {arm}: {capacity.describe()}" if capacity else f"- {arm}: not searched")
    return [*lines, ""]


def overloaded_rates(runs: Sweep) -> set[float]:
    """The offered rates (medians across repeats) at which most repeats were overloaded: crossed out in plots."""
    return {of(repeats, offered).median for repeats in runs.values() if mostly_overloaded(repeats)}
