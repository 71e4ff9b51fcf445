"""Results on disk (requests.jsonl, summary.json) and the summary as a terminal table."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.records import RequestRecord


def write_results(directory: Path, records: Sequence[RequestRecord], summary: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "requests.jsonl").open("w") as f:
        for record in records:
            f.write(json.dumps(record.to_json()) + "\n")
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def read_records(directory: Path) -> list[RequestRecord]:
    with (directory / "requests.jsonl").open() as f:
        return [RequestRecord.from_json(json.loads(line)) for line in f if line.strip()]


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1e3:9.1f}"


def format_summary(summary: dict[str, Any], title: str = "") -> str:
    lines = [title] if title else []
    lines.append(
        f"requests: {summary['sent']} sent, {summary['completed']} completed, {summary['failed']} failed"
        + (f" {summary['errors']}" if summary["errors"] else "")
        + f"; duration {summary['duration_s']:.1f} s"
    )
    lines.append(
        f"throughput: {summary['request_throughput']:.2f} req/s, {summary['output_throughput']:.1f} output tok/s, "
        f"{summary['total_token_throughput']:.1f} total tok/s"
    )
    lines.append(
        f"goodput: {summary['goodput']:.2f} req/s; SLO attainment {summary['slo_attainment']:.1%} "
        + ", ".join(f"{name} {c['slo_attainment']:.1%}" for name, c in summary["per_class"].items())
    )
    lines.append(f"{'(ms)':<6}{'mean':>10}{'median':>10}{'p90':>10}{'p99':>10}{'std':>10}")
    for metric in ("ttft", "tpot", "itl", "e2el"):
        values = summary[f"{metric}_s"]
        lines.append(
            f"{metric.upper():<6}" + "".join(f" {_ms(values[k])}" for k in ("mean", "median", "p90", "p99", "std"))
        )
    return "\n".join(lines)
