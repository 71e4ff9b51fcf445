"""An experiment's runs on disk, and whether a rate holds the SLO target.

Under an arm's directory, `rate-<r>/` holds one run (summary.json, requests.jsonl). With repeats, the k-th run of
a rate is in `rate-<r>/repeat-<k>/` (k from 1; its seed is the workload's seed + k - 1, so every arm gets the same
request lists). The capacity search's probes are in `capacity/rate-<r>/` and its outcome in
`capacity/search.json` (see `apps.capacity`).

A rate holds the target when its run reaches ≥ 90% SLO attainment in a steady state; with repeats, when most of
its repeats do. An overloaded run's attainment depends on how long it ran, so it never counts as holding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ATTAINMENT_TARGET = 0.9

Summary = dict[str, Any]
Sweep = dict[float, list[Summary]]  # rate -> its repeats' summaries, in repeat order


def rate_dir(arm_dir: Path, rate: float) -> Path:
    return arm_dir / f"rate-{rate:g}"


def run_dir(rate_dir: Path, repeat: int, repeats: int) -> Path:
    """Where repeat `repeat` (from 1) of `repeats` goes; a single run keeps the layout results had before."""
    return rate_dir if repeats == 1 else rate_dir / f"repeat-{repeat}"


def capacity_dir(arm_dir: Path) -> Path:
    return arm_dir / "capacity"


def _repeat_number(path: Path) -> int:
    return int(path.name.removeprefix("repeat-"))


def run_dirs(directory: Path) -> list[Path]:
    """The runs of one rate (its directory): the directory itself, or its repeats in order."""
    if (directory / "summary.json").exists():
        return [directory]
    repeats = [p.parent for p in directory.glob("repeat-*/summary.json")]
    return sorted(repeats, key=_repeat_number)


def read_sweep(arm_dir: Path) -> Sweep:
    """Every rate's runs under an arm's directory (capacity probes are not part of the sweep)."""
    sweep: Sweep = {}
    for directory in sorted(arm_dir.glob("rate-*")):
        summaries = [json.loads((d / "summary.json").read_text()) for d in run_dirs(directory)]
        if summaries:
            sweep[float(summaries[0]["workload"]["rate"])] = summaries
    return sweep


def first_summary(directory: Path) -> Path:
    """Any one run's summary under a compare directory (each carries the experiment's description)."""
    for pattern in ("*/rate-*/summary.json", "*/rate-*/repeat-*/summary.json"):
        found = next(directory.glob(pattern), None)
        if found is not None:
            return found
    raise ValueError(f"{directory}: no results (expected <arm>/rate-<r>/summary.json)")


def overloaded(summary: Summary) -> bool:
    """The run never reached a steady state (see `loadgen.steady_state`); results from before it was judged: no."""
    return bool(summary.get("steady_state", {}).get("overloaded", False))


def holds_target(summary: Summary) -> bool:
    """At least 90% SLO attainment, in a steady state: an overloaded run's attainment depends on its length."""
    return summary["slo_attainment"] >= ATTAINMENT_TARGET and not overloaded(summary)


def holds(repeats: Sequence[Summary]) -> bool:
    """Most repeats hold the target (a single run: it does)."""
    return 2 * sum(holds_target(s) for s in repeats) > len(repeats)


def mostly_overloaded(repeats: Sequence[Summary]) -> bool:
    return 2 * sum(overloaded(s) for s in repeats) > len(repeats)


def max_rate_holding(points: Mapping[float, bool]) -> tuple[float | None, bool]:
    """The highest rate at and below which every rate holds the target (DistServe's max rate), and whether some
    higher rate holds again (a non-monotone sweep: noise or too short a run)."""
    best = None
    for rate in sorted(points):
        if not points[rate]:
            break
        best = rate
    again = any(points[r] for r in points if best is None or r > best)
    return best, again


def max_rate_meeting_target(points: Mapping[float, Summary]) -> tuple[float | None, bool]:
    """`max_rate_holding` over single runs."""
    return max_rate_holding({rate: holds_target(s) for rate, s in points.items()})
