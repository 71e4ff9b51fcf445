"""The comparison report: results/compare/report.md with its plots, from the summaries and records on disk.

It states what was measured. Where the literature's expectation (colocated decodes stall behind long prefills;
disaggregation keeps TPOT flat and pays prefill queueing and KV transfer in TTFT) does or does not hold in
these numbers, it says so, from the numbers.
"""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from apps.expectations import expectations
from apps.plots import cdf_plot, rate_plot
from loadgen.metrics import request_metrics
from loadgen.results import read_records

LEGACY_ARMS = ("colocated", "disaggregated")
ATTAINMENT_TARGET = 0.9


def _load(directory: Path, arms: list[str]) -> dict[str, dict[float, dict[str, Any]]]:
    runs: dict[str, dict[float, dict[str, Any]]] = {}
    for arm in arms:
        for summary_path in sorted((directory / arm).glob("rate-*/summary.json")):
            summary = json.loads(summary_path.read_text())
            runs.setdefault(arm, {})[float(summary["workload"]["rate"])] = summary
    missing = [a for a in arms if a not in runs]
    if missing:
        raise ValueError(f"{directory}: no results for {', '.join(missing)}")
    return runs


def overloaded(summary: dict[str, Any]) -> bool:
    """The run never reached a steady state (see `loadgen.steady_state`); results from before it was judged: no."""
    return bool(summary.get("steady_state", {}).get("overloaded", False))


def holds_target(summary: dict[str, Any]) -> bool:
    """At least 90% SLO attainment, in a steady state: an overloaded run's attainment depends on its length."""
    return summary["slo_attainment"] >= ATTAINMENT_TARGET and not overloaded(summary)


def max_rate_meeting_target(points: dict[float, dict[str, Any]]) -> tuple[float | None, bool]:
    """The highest swept rate at and below which every rate holds the target (DistServe's max rate), and whether
    some higher rate passes again (a non-monotone sweep: noise or too short a run)."""
    best = None
    for rate in sorted(points):
        if not holds_target(points[rate]):
            break
        best = rate
    higher = [r for r in points if (best is None or r > best) and holds_target(points[r])]
    return best, bool(higher)


def offered(summary: dict[str, Any]) -> float:
    """The rate requests were really sent at (a Poisson sample of 30 s strays from the nominal rate)."""
    return float(summary["workload"]["offered_rate"])


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


def _ms(seconds: float) -> str:
    return "n/a" if seconds is None or math.isnan(seconds) else f"{seconds * 1e3:.0f}"


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
    first = main[arms[0]]
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
        *(f"- class {line}" for line in experiment.get("classes", [])),
        "- SLOs per class: " + "; ".join(_slo_text(name, c["slo"]) for name, c in first["per_class"].items()),
        f"- lengths the model's context could not hold ({first['workload']['length_policy']}): "
        + ", ".join(
            f"{a} {main[a]['workload']['lengths_adjusted']} changed, {main[a]['workload']['requests_skipped']} skipped"
            for a in arms
        )
        + _scale_text(first["workload"]),
        "",
        f"## At {main_rate:g} requests/s",
        "",
        *_main_table(arms, main),
        "",
        "![TTFT CDF](ttft_cdf.png) ![TPOT CDF](tpot_cdf.png) ![ITL CDF](itl_cdf.png)",
        "",
        "## Rate sweep",
        "",
        'Each rate\'s requests are the same; only their send times scale (Poisson, one seed). "offered" is the rate '
        "they were really sent at, which the plots use. A run marked overloaded never reached a steady state (its "
        "backlog grew while sending, or requests timed out): its figures depend on the run's length, the plots "
        "cross it out, and it never counts as holding the target.",
        "",
        *_sweep_table(arms, runs),
        "",
        "![SLO attainment](attainment_vs_rate.png) ![Goodput](goodput_vs_rate.png)",
        "",
        "Highest swept rate up to which SLO attainment stays ≥ 90%, and per device:",
        "",
        *_capacity(arms, runs, main),
        "",
        "## Against the expectation from the literature",
        "",
        *expectations(main, runs),
        "",
        "Raw data: `<arm>/rate-<r>/requests.jsonl` (every request, every token's arrival time) and `summary.json`.",
    ]
    report = directory / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _plots(directory: Path, arms: list[str], runs: dict[str, dict[float, dict[str, Any]]], rate: float) -> None:
    metrics = {
        arm: [m for m in map(request_metrics, read_records(directory / arm / f"rate-{rate:g}")) if m] for arm in arms
    }
    at = f"at {rate:g} req/s"
    ttfts = {a: [x.ttft for x in metrics[a]] for a in arms}
    tpots = {a: [x.tpot for x in metrics[a] if x.tpot is not None] for a in arms}
    itls = {a: [gap for x in metrics[a] for gap in x.itls] for a in arms}
    cdf_plot(ttfts, "TTFT (s)", f"Time to first token {at}", directory / "ttft_cdf.png")
    cdf_plot(tpots, "TPOT (ms)", f"Time per output token {at}", directory / "tpot_cdf.png", scale=1e3)
    cdf_plot(itls, "ITL (ms, log scale)", f"Inter-token latency (every gap) {at}", directory / "itl_cdf.png",
             scale=1e3, unit="gaps", log_x=True)  # fmt: skip
    attainment = {a: [(offered(s), s["slo_attainment"] * 100) for s in runs[a].values()] for a in arms}
    goodput = {a: [(offered(s), s["goodput"]) for s in runs[a].values()] for a in arms}
    over = {a: {offered(s) for s in runs[a].values() if overloaded(s)} for a in arms}
    rate_plot(attainment, "SLO attainment (%)", "SLO attainment against offered rate",
              directory / "attainment_vs_rate.png", "attainment", over)  # fmt: skip
    rate_plot(goodput, "goodput (requests/s meeting SLO)", "Goodput against offered rate",
              directory / "goodput_vs_rate.png", "goodput", over)  # fmt: skip


def _steadiness(summary: dict[str, Any]) -> str:
    if "steady_state" not in summary:
        return "not judged"
    return f"**overloaded**: {summary['steady_state']['reason']}" if overloaded(summary) else "yes"


def _scale_text(workload: dict[str, Any]) -> str:
    factor = float(workload.get("length_scale_factor", 1.0))
    return f"; every input and output length was multiplied by {factor:.3g}" if factor < 1 else ""


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _main_table(arms: list[str], main: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| | " + " | ".join(arms) + " |", "|---" * (1 + len(arms)) + "|"]
    for metric in ("ttft", "tpot", "itl", "e2el"):
        for stat in ("median", "p90", "p99"):
            lines.append(_row(f"{metric.upper()} {stat} (ms)", [_ms(main[a][f"{metric}_s"][stat]) for a in arms]))
        if metric == "itl":  # the longest decode stall: rarer than 1% of gaps, so p99 alone can miss it
            lines.append(_row("ITL max (ms)", [_ms(main[a]["itl_s"].get("max", math.nan)) for a in arms]))
    for key, label in (
        ("request_throughput", "throughput (req/s)"),
        ("output_throughput", "output throughput (tokens/s)"),
        ("goodput", "goodput (req/s meeting SLO)"),
    ):
        lines.append(_row(label, [f"{main[a][key]:.2f}" for a in arms]))
    lines.append(_row("SLO attainment", [f"{main[a]['slo_attainment']:.1%}" for a in arms]))
    lines.append(_row("completed / sent", [f"{main[a]['completed']} / {main[a]['sent']}" for a in arms]))
    lines.append(_row("offered rate as sent (req/s)", [f"{offered(main[a]):.2f}" for a in arms]))
    lines.append(_row("steady state", [_steadiness(main[a]) for a in arms]))
    for name in main[arms[0]]["per_class"]:
        lines.append(
            _row(f"SLO attainment, {name}", [f"{main[a]['per_class'][name]['slo_attainment']:.1%}" for a in arms])
        )
    return lines


def _sweep_table(arms: list[str], runs: dict[str, dict[float, dict[str, Any]]]) -> list[str]:
    columns = [f"{a} {c}" for a in arms for c in ("offered", "attainment", "goodput", "TPOT p99 (ms)")]
    lines = [_row("rate (req/s)", columns), "|---" * (1 + len(columns)) + "|"]
    for rate in sorted({r for a in arms for r in runs[a]}):
        cells: list[str] = []
        for arm in arms:
            s = runs[arm].get(rate)
            if s is None:
                cells += ["-"] * 4
            else:
                flag = " (overloaded)" if overloaded(s) else ""
                cells += [f"{offered(s):.2f}", f"{s['slo_attainment']:.1%}{flag}", f"{s['goodput']:.2f}",
                          _ms(s["tpot_s"]["p99"])]  # fmt: skip
        lines.append(_row(f"{rate:g}", cells))
    return lines


def _capacity(arms: list[str], runs: dict[str, dict[float, dict[str, Any]]], main: dict[str, Any]) -> list[str]:
    lines = []
    for arm in arms:
        best, again = max_rate_meeting_target(runs[arm])
        devices = main[arm]["workload"]["devices"]
        if best is None:
            text = "none of the swept rates"
        else:
            sent = offered(runs[arm][best])
            per_device = f"{best / devices:.2f} req/s per device ({sent / devices:.2f} as sent)"
            text = f"{best:g} req/s (sent at {sent:.2f}), {per_device}"
        if again:
            text += "; a higher rate passes again (a non-monotone sweep: noise, or runs too short to settle)"
        lines.append(f"- {arm} ({devices} devices): {text}")
    return lines
