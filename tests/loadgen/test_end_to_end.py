"""A short run of the load generator against both deployments, and the comparison report built from it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from apps.loadgen_cli import measure
from apps.report import write_report
from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode
from tests.cluster import cluster

RATE = 6.0


def _run(mode: Mode, output: Path) -> dict[str, Any]:
    spec = WorkloadSpec(mix="chat", arrivals=Arrivals(ArrivalKind.POISSON, rate=RATE), count=60, seed=3)
    limits = RunLimits(duration=2.5, warmup=2, request_timeout=60, drain_timeout=30)

    async def scenario() -> dict[str, Any]:
        async with cluster(mode, workers=2, prefill=1, decode=1) as c:
            extra = {"mode": mode.value, "rate": RATE, "devices": 2}
            return await measure(c.address, spec, limits, output / mode.value / f"rate-{RATE:g}", extra=extra)

    return asyncio.run(scenario())


def test_both_modes_end_to_end_with_a_report(tmp_path: Path) -> None:
    summaries = {mode: _run(mode, tmp_path) for mode in (Mode.COLOCATED, Mode.DISAGGREGATED)}
    for mode, summary in summaries.items():
        assert summary["sent"] >= 8, mode
        assert summary["completed"] == summary["sent"] and summary["failed"] == 0, summary["errors"]
        assert summary["ttft_s"]["median"] > 0 and summary["output_throughput"] > 0
        lines = (tmp_path / mode.value / f"rate-{RATE:g}" / "requests.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        assert len(lines) == summary["sent"] and len(first["chunk_times"]) == first["output_tokens_requested"]
    # Both modes got the identical request list.
    sent = {m: [json.loads(x)["input_tokens"] for x in (tmp_path / m.value / f"rate-{RATE:g}" / "requests.jsonl")
                .read_text().splitlines()] for m in summaries}  # fmt: skip
    assert sent[Mode.COLOCATED] == sent[Mode.DISAGGREGATED]

    experiment = {"model": "tiny", "dtype": "float32", "device": "cpu", "max_batch": 16, "colocated": "2 workers",
                  "disaggregated": "1 prefill + 1 decode", "routing": "round-robin", "workload": "chat",
                  "duration_s": 2.5, "warmup_requests": 2, "rate": RATE, "rates": [RATE]}  # fmt: skip
    report = write_report(tmp_path, experiment).read_text()
    assert "| TTFT median (ms) |" in report and "Highest swept rate" in report
    assert "| offered rate as sent (req/s) |" in report and "| SLO attainment, chat |" in report
    sweep_row = next(line for line in report.splitlines() if line.startswith(f"| {RATE:g} |"))
    assert sweep_row.count("|") == 2 + 4 * 2  # rate, then offered/attainment/goodput/TPOT per mode
    for name in ("ttft_cdf", "tpot_cdf", "itl_cdf", "attainment_vs_rate", "goodput_vs_rate"):
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name

    # Any number of arms: the report takes them from the experiment, in its order (here a third arm's results are
    # a copy of the colocated ones, which is all the report's shape needs).
    shutil.copytree(tmp_path / "colocated", tmp_path / "colocated-prefill-first")
    arms = [{"name": n, "mode": m, "describe": n, "devices": 2, "shape": "2 nodes"}
            for n, m in (("colocated", "colocated"), ("colocated-prefill-first", "colocated"),
                         ("disaggregated", "disaggregated"))]  # fmt: skip
    report = write_report(tmp_path, {**experiment, "arms": arms}).read_text()
    assert "| | colocated | colocated-prefill-first | disaggregated |" in report
    sweep_row = next(line for line in report.splitlines() if line.startswith(f"| {RATE:g} |"))
    assert sweep_row.count("|") == 2 + 4 * 3
    assert "Chunked prefill removes that stall (Sarathi-Serve), so ITL p99 chunked" in report
    assert "| ITL max (ms) |" in report and "the longest decode stall (ITL max)" in report
    assert "goodput per device" in report
