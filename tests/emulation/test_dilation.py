"""Time dilation on the measuring side: the load generator's clock, the router's timeline and both kinds of
metrics report emulated seconds (wall seconds / dilation)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from loadgen.clock import RunClock
from loadgen.runner import RunLimits
from pdsim.core.slo import Slo, SloTable
from pdsim.engine.request import Phase
from pdsim.engine.schedulers import LoadSnapshot
from pdsim.engine.step_stats import StepStats
from pdsim.metrics import NodeMetrics, RouterMetrics, SeriesLabels
from router.timeline import RequestTimeline

LABELS = SeriesLabels("disaggregated", "router", "r")


def test_the_run_clock_reads_emulated_seconds_and_prefers_the_nodes_stamps() -> None:
    clock = RunClock(start=time.perf_counter() - 10.0, dilation=5.0)
    assert clock.now() == pytest.approx(2.0, abs=0.01)
    assert clock.wall_at(3.0) == pytest.approx(clock.start + 15.0)
    assert clock.wall(2.0) == 10.0
    assert clock.token_time([clock.start + 4.0, clock.start + 5.0]) == pytest.approx(1.0)  # the last stamp
    real = RunClock(start=time.perf_counter() - 10.0)
    assert real.token_time([real.start + 1.0]) == pytest.approx(10.0, abs=0.01)  # no dilation: arrival time
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"dilation must be a number >= 1, got {bad}"):
            RunLimits(dilation=bad)


def test_the_router_timeline_counts_from_the_emission_and_divides_by_the_dilation() -> None:
    received = time.perf_counter()
    timeline = RequestTimeline(received, use_stamps=True)
    timeline.tokenized()
    timeline.calling("prefill-0")
    timeline.first_token({"receive": 0.0, "queue": 0.0, "compute": 0.5}, emitted_at=received + 1.0)
    seconds = timeline.snapshot(dilation=10.0).seconds
    assert seconds["ttft"] == pytest.approx(0.1)
    assert seconds["prefill"] == pytest.approx(0.05)


def test_router_metrics_record_and_judge_emulated_seconds() -> None:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry, LABELS, SloTable(Slo(ttft=0.2, tpot=0.06)), dilation=10.0)
    metrics.completed("", ttft=1.0, e2el=3.0, itls=[0.2], output_tokens=5)  # emulated: 0.1, 0.3, tpot 0.05
    labels = {"mode": "disaggregated", "role": "router", "instance": "r"}
    assert registry.get_sample_value("pdsim_time_to_first_token_seconds_sum", labels) == pytest.approx(0.1)
    assert registry.get_sample_value("pdsim_inter_token_latency_seconds_sum", labels) == pytest.approx(0.02)
    assert registry.get_sample_value("pdsim_requests_slo_met_total", {**labels, "slo_class": "default"}) == 1.0
    assert registry.get_sample_value("pdsim_time_dilation", labels) == 10.0


def test_node_metrics_record_emulated_step_times() -> None:
    registry = CollectorRegistry()
    labels = SeriesLabels("disaggregated", "decode", "d")
    metrics = NodeMetrics(registry, labels, lambda: LoadSnapshot(0, 0, 0, 1), ("received",), dilation=4.0)
    metrics.step("decode", StepStats(Phase.DECODE, 8, 0, 8, 8, 8, 0.0, 0.2, 0, 8, (0.4,)))
    metrics.kv_transfer("received", 1000, 0.8)
    by = {"mode": "disaggregated", "role": "decode", "instance": "d"}
    assert registry.get_sample_value("pdsim_step_seconds_sum", {**by, "phase": "decode"}) == pytest.approx(0.05)
    assert registry.get_sample_value("pdsim_request_queue_time_seconds_sum", by) == pytest.approx(0.1)
    assert registry.get_sample_value("pdsim_kv_transfer_seconds_sum", {**by, "direction": "received"}) == 0.2
