"""Metric math, exactly as docs/metrics.md defines it: per request TTFT, TPOT, ITL, E2EL and SLO met;
per run duration, throughputs, goodput, SLO attainment and the statistics of each latency."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from loadgen.records import RequestRecord
from pdsim.core.slo import Slo


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    ttft: float
    e2el: float
    tpot: float | None  # None with a single output token
    itls: tuple[float, ...]  # one per gap between streamed messages
    output_tokens: int


def request_metrics(record: RequestRecord) -> RequestMetrics | None:
    """None for a request that did not complete."""
    if not record.ok:
        return None
    ttft = record.chunk_times[0] - record.sent
    e2el = record.chunk_times[-1] - record.sent
    tokens = record.output_tokens
    tpot = (e2el - ttft) / (tokens - 1) if tokens > 1 else None
    itls = tuple(b - a for a, b in pairwise(record.chunk_times))
    return RequestMetrics(ttft, e2el, tpot, itls, tokens)


def met_slo(metrics: RequestMetrics | None, slo: Slo) -> bool:
    """Failed requests never meet their SLO; TPOT is not checked when it is undefined (one token)."""
    return metrics is not None and slo.met(metrics.ttft, metrics.tpot, metrics.e2el)


def stats(values: Sequence[float]) -> dict[str, float]:
    """mean, median, p90, p99, max and std (numpy's linear percentiles, as vLLM's benchmark uses); NaN when empty.

    The max is kept because a stall that hits fewer than 1% of samples (a long prefill pausing the decodes
    beside it) is invisible at p99; it shows only in the longest gap."""
    if not values:
        return dict.fromkeys(("mean", "median", "p90", "p99", "max", "std"), math.nan)
    array = np.asarray(values, dtype=float)
    return {
        "mean": float(array.mean()),
        "median": float(np.percentile(array, 50)),
        "p90": float(np.percentile(array, 90)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
        "std": float(array.std()),
    }


def summarize(records: Sequence[RequestRecord], slos: Mapping[str, Slo]) -> dict[str, Any]:
    measured = [(r, request_metrics(r)) for r in records]
    completed = [(r, m) for r, m in measured if m is not None]
    met = [r for r, m in measured if met_slo(m, slos[r.request_class])]
    if records:
        first_send = min(r.sent for r in records)
        last = max((r.chunk_times[-1] for r, _ in completed), default=max(r.ended for r in records))
        duration = max(last - first_send, 1e-9)
    else:
        duration = math.nan
    output = sum(m.output_tokens for _, m in completed)
    prompt = sum(r.input_tokens for r, _ in completed)
    per_class = {}
    for name in sorted({r.request_class for r in records}):
        sent = [r for r in records if r.request_class == name]
        good = [r for r in met if r.request_class == name]
        per_class[name] = {
            "sent": len(sent),
            "completed": sum(1 for r, _ in completed if r.request_class == name),
            "met_slo": len(good),
            "slo_attainment": len(good) / len(sent),
            "slo": {"ttft": slos[name].ttft, "tpot": slos[name].tpot, "e2el": slos[name].e2el},
        }
    return {
        "sent": len(records),
        "completed": len(completed),
        "failed": len(records) - len(completed),
        "met_slo": len(met),
        "duration_s": duration,
        "request_throughput": len(completed) / duration,
        "output_throughput": output / duration,
        "total_token_throughput": (prompt + output) / duration,
        "goodput": len(met) / duration,
        "slo_attainment": len(met) / len(records) if records else math.nan,
        "ttft_s": stats([m.ttft for _, m in completed]),
        "tpot_s": stats([m.tpot for _, m in completed if m.tpot is not None]),
        "itl_s": stats([gap for _, m in completed for gap in m.itls]),
        "e2el_s": stats([m.e2el for _, m in completed]),
        "per_class": per_class,
        "errors": _error_counts(records),
    }


def _error_counts(records: Sequence[RequestRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        if not record.ok:
            key = record.code or record.status
            counts[key] = counts.get(key, 0) + 1
    return counts
