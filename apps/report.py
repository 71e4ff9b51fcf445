"""The comparison report: results/compare/report.md with its plots, from the summaries and records on disk.

It states what was measured. Where the literature's expectation (colocated decodes stall behind long prefills;
disaggregation keeps TPOT flat and pays prefill queueing and KV transfer in TTFT) does or does not hold in
these numbers, it says so, from the numbers.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from apps.breakdown import breakdown_section
from apps.expectations import expectations
from apps.plots import cdf_plot, rate_plot
from apps.report_tables import (
    Runs,
    key,
    main_table,
    of,
    offered,
    overloaded_rates,
    searched_capacity,
    sweep_table,
    swept_capacity,
)
from apps.sweep import Summary, rate_dir, read_sweep, run_dirs
from loadgen.metrics import request_metrics
from loadgen.records import RequestRecord
from loadgen.results import read_records

LEGACY_ARMS = ("colocated", "disaggregated")


def _load(directory: Path, arms: list[str]) -> Runs:
    runs = {arm: read_sweep(directory / arm) for arm in arms}
    missing = [a for a in arms if not runs[a]]
    if missing:
        raise ValueError(f"{directory}: no results for {', '.join(missing)}")
    return runs


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{p} {_version(p)}" for p in ("torch", "transformers", "grpcio"))
    system = f"{platform.system()} {platform.release()}; Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores; {system}; {versions}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _slo_text(name: str, slo: dict[str, float | None]) -> str:
    text = f"{name}: TTFT ≤ {slo['ttft']:g} s, TPOT ≤ {(slo['tpot'] or 0) * 1e3:g} ms"
    return text + (f", E2EL ≤ {slo['e2el']:g} s" if slo.get("e2el") else "")


def arm_names(experiment: dict[str, Any]) -> list[str]:
    """The arms the experiment ran, in its order (results written before arms existed name the two modes)."""
    return [a["name"] for a in experiment.get("arms", [])] or list(LEGACY_ARMS)


def write_report(directory: Path, experiment: dict[str, Any]) -> Path:
    arms = arm_names(experiment)
    runs = _load(directory, arms)
    main_rate = float(experiment["rate"])
    main = {arm: runs[arm][main_rate] for arm in arms}
    _plots(directory, arms, runs, main_rate)
    first = main[arms[0]][0]
    repeats = len(main[arms[0]])
    lines = [
        "# pdsim: " + " vs ".join(arms),
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `make compare` from the results in this "
        "directory. Every figure below was measured in this run; none is tuned toward a conclusion.",
        "",
        "## Setup",
        "",
        f"- machine: {_machine()}",
        f"- model: `{experiment['model']}` ({experiment['dtype']}, {experiment['device']}), "
        f"context {first['workload']['max_context']} tokens, up to {experiment['max_batch']} requests per batch",
        *(
            f"- arm `{a['name']}`: {a['describe']}, {a['devices']} devices ({a['shape']})"
            for a in experiment.get("arms", [])
        ),
        f"- {experiment.get('placement', '')}; router policy {experiment['routing']}",
        f"- workload: {experiment['workload']}; each rate sends for {experiment['duration_s']:g} s after "
        f"{experiment['warmup_requests']} uncounted warm-up requests; every arm gets the identical request list",
        f"- rates swept: {', '.join(f'{r:g}' for r in sorted(runs[arms[0]]))} req/s",
        _repeats_text(experiment, repeats),
        *(f"- class {line}" for line in experiment.get("classes", [])),
        "- SLOs per class: " + "; ".join(_slo_text(name, c["slo"]) for name, c in first["per_class"].items()),
        f"- lengths the model's context could not hold ({first['workload']['length_policy']}): "
        + ", ".join(
            f"{a} {sum(s['workload']['lengths_adjusted'] for s in main[a])} changed, "
            f"{sum(s['workload']['requests_skipped'] for s in main[a])} skipped"
            for a in arms
        )
        + (" (all repeats)" if repeats > 1 else "")
        + _scale_text(first["workload"]),
        "",
        f"## At {main_rate:g} requests/s",
        "",
        *main_table(arms, main),
        "",
        "![TTFT CDF](ttft_cdf.png) ![TPOT CDF](tpot_cdf.png) ![ITL CDF](itl_cdf.png)",
        "",
        *breakdown_section(
            {arm: _records(directory, arm, main_rate) for arm in arms},
            main_rate,
            directory,
            {r: {arm: _records(directory, arm, r) for arm in arms} for r in sorted(runs[arms[0]]) if r != main_rate},
        ),
        "## Rate sweep",
        "",
        "Each rate's requests are the same; only their send times scale (Poisson"
        + (", one seed per repeat" if repeats > 1 else ", one seed")
        + '). "offered" is the rate they were really sent at, which the plots use. A run marked overloaded never '
        "reached a steady state (its backlog grew while sending, or requests timed out): its figures depend on the "
        "run's length, the plots cross it out, and it never counts as holding the target"
        + (" (a rate holds when most of its repeats do)." if repeats > 1 else "."),
        "",
        *sweep_table(arms, runs),
        "",
        "![SLO attainment](attainment_vs_rate.png) ![Goodput](goodput_vs_rate.png)",
        "",
        "Highest swept rate up to which SLO attainment stays ≥ 90%, and per device:",
        "",
        *swept_capacity(arms, runs, main),
        "",
        *searched_capacity(directory, arms, experiment),
        "## Against the expectation from the literature",
        "",
        *expectations(main, runs),
        "",
        "Raw data: `<arm>/rate-<r>/"
        + ("repeat-<k>/" if repeats > 1 else "")
        + "requests.jsonl` (every request, every token's arrival time) and `summary.json`.",
    ]
    report = directory / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _repeats_text(experiment: dict[str, Any], repeats: int) -> str:
    if repeats == 1:
        return (
            "- one run per rate: every figure is a single measurement, and the checks below call a difference "
            "under 10% no clear difference (`--repeats N` gives intervals)"
        )
    seeds = experiment.get("seeds", [])
    return (
        f"- {repeats} runs per rate (seeds {', '.join(map(str, seeds))}: the same mix, other arrival times and "
        "lengths); every figure is the median across them with its 95% bootstrap confidence interval in brackets "
        f"(with {repeats} runs the interval is about their range), and the checks below call a difference clear "
        "only when the intervals do not overlap"
    )


def _records(directory: Path, arm: str, rate: float) -> list[RequestRecord]:
    """Every request of every repeat of one arm at one rate."""
    return [record for d in run_dirs(rate_dir(directory / arm, rate)) for record in read_records(d)]


def _plots(directory: Path, arms: list[str], runs: Runs, rate: float) -> None:
    """CDFs over every request of every repeat at the main rate; rate plots of medians with their intervals."""
    metrics = {arm: [m for m in map(request_metrics, _records(directory, arm, rate)) if m] for arm in arms}
    at = f"at {rate:g} req/s" + (", all repeats" if any(len(runs[a][rate]) > 1 for a in arms) else "")
    ttfts = {a: [x.ttft for x in metrics[a]] for a in arms}
    tpots = {a: [x.tpot for x in metrics[a] if x.tpot is not None] for a in arms}
    itls = {a: [gap for x in metrics[a] for gap in x.itls] for a in arms}
    cdf_plot(ttfts, "TTFT (s)", f"Time to first token {at}", directory / "ttft_cdf.png")
    cdf_plot(tpots, "TPOT (ms)", f"Time per output token {at}", directory / "tpot_cdf.png", scale=1e3)
    cdf_plot(itls, "ITL (ms, log scale)", f"Inter-token latency (every gap) {at}", directory / "itl_cdf.png",
             scale=1e3, unit="gaps", log_x=True)  # fmt: skip
    attainment = {a: _points(runs[a], "slo_attainment", 100) for a in arms}
    goodput = {a: _points(runs[a], "goodput", 1) for a in arms}
    over = {a: overloaded_rates(runs[a]) for a in arms}
    rate_plot(attainment, "SLO attainment (%)", "SLO attainment against offered rate",
              directory / "attainment_vs_rate.png", "attainment", over)  # fmt: skip
    rate_plot(goodput, "goodput (requests/s meeting SLO)", "Goodput against offered rate",
              directory / "goodput_vs_rate.png", "goodput", over)  # fmt: skip


def _points(runs: dict[float, list[Summary]], figure: str, scale: float) -> list[tuple[float, float, float, float]]:
    """(offered rate, median, interval low, interval high) per rate."""
    points = []
    for repeats in runs.values():
        value = of(repeats, key(figure)).scaled(scale)
        points.append((of(repeats, offered).median, value.median, value.low, value.high))
    return points


def _scale_text(workload: dict[str, Any]) -> str:
    factor = float(workload.get("length_scale_factor", 1.0))
    return f"; every input and output length was multiplied by {factor:.3g}" if factor < 1 else ""
