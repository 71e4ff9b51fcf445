"""Turn measured points into the results: one JSON-ready record per point, the terminal table, the claims.

Knows nothing about torch or timing: it reads `Point`s and `Peaks` and does arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.phases.points import Headline, Point
from benchmarks.phases.roofs import Peaks


def point_record(point: Point, measured: Peaks, spec: Peaks | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "phase": point.phase,
        "batch": point.batch,
        "context": point.context,
        "steps": point.steps,
        "step_s": point.step_seconds,
        "tokens_per_s": point.tokens_per_s,
        "flops_per_step": point.flops / point.steps,
        "bytes_per_step": point.bytes / point.steps,
        "intensity": point.intensity,
        "flops_per_s": point.flops_per_s,
        "bytes_per_s": point.bytes_per_s,
        "mfu": point.flops_per_s / measured.flops_per_s,
        "mbu": point.bytes_per_s / measured.bytes_per_s,
        "bound": "memory" if point.intensity < measured.ridge else "compute",
        "of_roofline": point.flops_per_s / measured.attainable(point.intensity),
    }
    if spec is not None:
        record["spec_mfu"] = point.flops_per_s / spec.flops_per_s
        record["spec_mbu"] = point.bytes_per_s / spec.bytes_per_s
    return record


def peaks_record(peaks: Peaks) -> dict[str, Any]:
    return {
        "source": peaks.source,
        "flops_per_s": peaks.flops_per_s,
        "bytes_per_s": peaks.bytes_per_s,
        "ridge_flop_per_byte": peaks.ridge,
    }


def headline_record(headline: Headline, measured: Peaks, spec: Peaks | None) -> dict[str, Any]:
    steps = sorted(headline.step_seconds)
    return {
        "prefill": point_record(headline.prefill, measured, spec),
        "decode": point_record(headline.decode, measured, spec),
        "prefill_s": headline.prefill.seconds,
        "decode_s": headline.decode.seconds,
        "decode_step_s": {
            "first": headline.step_seconds[0],
            "last": headline.step_seconds[-1],
            "median": steps[len(steps) // 2],
            "max": steps[-1],
        },
        "prefill_over_decode_tokens_per_s": headline.ratio,
    }


def claims(headline: Headline, decode: Sequence[Point]) -> dict[str, Any]:
    """The figures behind the issue's acceptance claims, as measured (nothing here decides pass or fail)."""
    shortest = min(p.context for p in decode)
    short = sorted((p for p in decode if p.context == shortest), key=lambda p: p.batch)
    first, last = short[0], short[-1]
    return {
        "prefill_over_decode_tokens_per_s": headline.ratio,
        "context": shortest,
        "decode_intensity_over_batch": {str(p.batch): p.intensity / p.batch for p in short},
        "batches": [first.batch, last.batch],
        "decode_tokens_per_s_gain": last.tokens_per_s / first.tokens_per_s,
        "decode_step_time_growth": last.step_seconds / first.step_seconds,
    }


def format_table(records: Sequence[dict[str, Any]]) -> str:
    header = (
        f"{'phase':<8}{'batch':>6}{'context':>8}{'ms/step':>10}{'tok/s':>10}{'GFLOP':>9}{'MB':>9}"
        f"{'FLOP/B':>9}{'GFLOP/s':>10}{'GB/s':>8}{'MFU':>7}{'MBU':>7}  bound"
    )
    lines = [header]
    for r in records:
        lines.append(
            f"{r['phase']:<8}{r['batch']:>6}{r['context']:>8}{r['step_s'] * 1e3:>10.2f}{r['tokens_per_s']:>10.0f}"
            f"{r['flops_per_step'] / 1e9:>9.2f}{r['bytes_per_step'] / 1e6:>9.1f}{r['intensity']:>9.1f}"
            f"{r['flops_per_s'] / 1e9:>10.1f}{r['bytes_per_s'] / 1e9:>8.1f}{r['mfu']:>7.1%}{r['mbu']:>7.1%}"
            f"  {r['bound']}"
        )
    return "\n".join(lines)


def format_claims(c: dict[str, Any]) -> str:
    ratios = ", ".join(f"B={b}: {v:.2f}" for b, v in c["decode_intensity_over_batch"].items())
    low, high = c["batches"]
    return "\n".join(
        [
            f"prefill tok/s / decode tok/s at the headline: {c['prefill_over_decode_tokens_per_s']:.1f}x",
            f"decode arithmetic intensity / batch at context {c['context']}: {ratios}",
            f"decode batch {low} -> {high} at context {c['context']}: tokens/s x{c['decode_tokens_per_s_gain']:.1f}, "
            f"time per step x{c['decode_step_time_growth']:.2f}",
        ]
    )
