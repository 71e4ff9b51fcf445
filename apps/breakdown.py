"""The report's "Where TTFT goes": each arm's TTFT and E2EL broken into stages, from the timelines the router
returned with each request (`pdsim.core.timeline`) and the client's own timestamps.

TTFT, as the client saw it: the server's stages (tokenize, route, node_receive, queue, prefill, transport, which
add up to the router's TTFT) plus `client`, the client's TTFT less the router's (the client's channel and the
router's front). E2EL: `ttft`, then `decode` (the gaps between tokens up to three times the request's own median
gap) and `stalls` (what the longer gaps add beyond that: a decode waiting behind a prefill, a KV transfer, a slot).
Each stage is summarised by its median and p90 over the completed requests; the stage with the largest median
share is named as the one that dominates.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from apps.plots import stacked_bars
from loadgen.records import RequestRecord
from pdsim.core.timeline import AFTER_FIRST_TOKEN, TTFT, TTFT_STAGES

TTFT_PARTS = (*TTFT_STAGES, "client")
E2EL_PARTS = ("ttft", "decode", "stalls")
STALL_FACTOR = 3.0  # a gap above this many times the request's median gap counts its excess as a stall

Parts = dict[str, list[float]]  # part -> one value (seconds) per request
Summary = dict[str, tuple[float, float]]  # part -> (median, p90) in seconds


def ttft_parts(records: Sequence[RequestRecord]) -> Parts:
    """Per completed request that carried a timeline."""
    parts: Parts = {part: [] for part in TTFT_PARTS}
    for record in records:
        if not record.ok or TTFT not in record.stages:
            continue
        for stage in TTFT_STAGES:
            parts[stage].append(record.stages.get(stage, 0.0))
        parts["client"].append((record.chunk_times[0] - record.sent) - record.stages[TTFT])
    return parts


def after_first_token(records: Sequence[RequestRecord]) -> Parts:
    """The disaggregated stages between the first and second token, per completed request that passed them."""
    parts: Parts = {stage: [] for stage in AFTER_FIRST_TOKEN}
    for record in records:
        if record.ok:
            for stage in AFTER_FIRST_TOKEN:
                if stage in record.stages:
                    parts[stage].append(record.stages[stage])
    return parts


def e2el_parts(records: Sequence[RequestRecord]) -> Parts:
    parts: Parts = {part: [] for part in E2EL_PARTS}
    for record in records:
        if not record.ok:
            continue
        times = record.chunk_times
        gaps = [b - a for a, b in pairwise(times)]
        limit = STALL_FACTOR * statistics.median(gaps) if gaps else 0.0
        stalls = sum(gap - limit for gap in gaps if gap > limit)
        parts["ttft"].append(times[0] - record.sent)
        parts["decode"].append(sum(gaps) - stalls)
        parts["stalls"].append(stalls)
    return parts


def summarize(parts: Parts) -> Summary:
    return {
        part: (float(np.percentile(values, 50)), float(np.percentile(values, 90)))
        for part, values in parts.items()
        if values
    }


def dominant(summary: Summary) -> tuple[str, float]:
    """The part with the largest median, and its share of the medians' sum."""
    total = sum(median for median, _ in summary.values())
    part = max(summary, key=lambda p: summary[p][0])
    return part, (summary[part][0] / total if total > 0 else 0.0)


ByArm = Mapping[str, Sequence[RequestRecord]]


def breakdown_section(records: ByArm, rate: float, directory: Path, other_rates: Mapping[float, ByArm]) -> list[str]:
    """The report's lines (and its two plots) for the main `rate`; one line per other rate naming what dominates."""
    ttft = {arm: summarize(ttft_parts(rs)) for arm, rs in records.items()}
    e2el = {arm: summarize(e2el_parts(rs)) for arm, rs in records.items()}
    if not any(ttft.values()):
        return ["## Where TTFT goes", "", "No request carried a server timeline (a server other than pdsim's?).", ""]
    intro = (
        f"At {rate:g} req/s, median / p90 of each stage in ms, over completed requests (stages are defined in "
        "docs/metrics.md; medians of stages do not add up to the median TTFT):"
    )
    lines = ["## Where TTFT goes", "", intro, ""]
    lines += _table(ttft, TTFT_PARTS)
    lines += ["", *_sentences(ttft, "TTFT"), "", "![TTFT breakdown](ttft_breakdown.png)", ""]
    handoff = {arm: summarize(after_first_token(rs)) for arm, rs in records.items()}
    if any(handoff.values()):
        lines += ["After the first token, before the second (disaggregated: the KV's way to the decode node):", ""]
        lines += [*_table({arm: s for arm, s in handoff.items() if s}, AFTER_FIRST_TOKEN), ""]
    lines += ["And E2EL (decode: gaps up to 3× the request's median gap; stalls: what longer gaps add):", ""]
    lines += _table(e2el, E2EL_PARTS)
    lines += ["", *_sentences(e2el, "E2EL"), "", "![E2EL breakdown](e2el_breakdown.png)", ""]
    for other, by_arm in sorted(other_rates.items()):
        named = []
        for arm, rs in by_arm.items():
            summary = summarize(ttft_parts(rs))
            if summary:
                part, share = dominant(summary)
                named.append(f"{arm} {part} ({share:.0%})")
        if named:
            lines.append(f"- at {other:g} req/s, the largest TTFT stage: " + "; ".join(named))
    lines.append("")
    stacked_bars({arm: s for arm, s in ttft.items() if s}, TTFT_PARTS,
                 f"Where TTFT goes at {rate:g} req/s", directory / "ttft_breakdown.png")  # fmt: skip
    stacked_bars({arm: s for arm, s in e2el.items() if s}, E2EL_PARTS,
                 f"Where E2EL goes at {rate:g} req/s", directory / "e2el_breakdown.png")  # fmt: skip
    return lines


def _table(summaries: Mapping[str, Summary], parts: Sequence[str]) -> list[str]:
    shown = [p for p in parts if any(p in s for s in summaries.values())]
    lines = ["| arm | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for arm, summary in summaries.items():
        cells = [f"{_ms(summary[p][0])} / {_ms(summary[p][1])}" if p in summary else "–" for p in shown]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def _ms(seconds: float) -> str:
    """Milliseconds, with a decimal below 10 ms (the router's own stages take fractions of one)."""
    ms = seconds * 1e3
    return f"{ms:.1f}" if abs(ms) < 10 else f"{ms:.0f}"


def _sentences(summaries: Mapping[str, Summary], what: str) -> list[str]:
    out = []
    for arm, summary in summaries.items():
        if summary:
            part, share = dominant(summary)
            out.append(f"- {arm}: {part} dominates {what} ({summary[part][0] * 1e3:.0f} ms median, {share:.0%} of "
                       "the stages' medians)")  # fmt: skip
    return out
