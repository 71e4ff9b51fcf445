"""Metric math against timings known exactly, and a scripted fake router measured through the real client."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import grpc
import pytest

from loadgen.metrics import met_slo, request_metrics, summarize
from loadgen.records import RequestRecord
from loadgen.runner import RunLimits, run_plan
from loadgen.workload import LengthPolicy, Plan, PlannedRequest
from pdsim.core.slo import Slo
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import bind, new_server

SLOS = {"chat": Slo(ttft=0.5, tpot=0.1), "long": Slo(ttft=2.0, tpot=0.1, e2el=3.0)}


def _record(index: int, cls: str, sent: float, times: list[float], tokens: list[int] | None = None) -> RequestRecord:
    return RequestRecord(
        index, cls, 10, sum(tokens or [1] * len(times)), sent, ended=times[-1] if times else sent,
        chunk_times=times, chunk_tokens=tokens or [1] * len(times),
    )  # fmt: skip


def test_request_metrics_follow_the_definitions() -> None:
    # Sent at 1.0; tokens at 1.3, 1.4, 1.6 and a chunk of 2 tokens at 2.0: five tokens, four gaps... of messages.
    record = _record(0, "chat", 1.0, [1.3, 1.4, 1.6, 2.0], [1, 1, 1, 2])
    m = request_metrics(record)
    assert m is not None
    assert m.ttft == pytest.approx(0.3)
    assert m.e2el == pytest.approx(1.0)
    assert m.tpot == pytest.approx((1.0 - 0.3) / (5 - 1))  # 0.175
    assert m.itls == pytest.approx((0.1, 0.2, 0.4))  # a chunk carrying two tokens is one gap
    assert not met_slo(m, SLOS["chat"])  # TPOT 175 ms > 100 ms
    single = request_metrics(_record(1, "chat", 0.0, [0.2]))
    assert single is not None and single.tpot is None and met_slo(single, SLOS["chat"])


def test_run_summary_counts_failures_as_missed() -> None:
    records = [
        _record(0, "chat", 0.0, [0.2, 0.3, 0.4]),  # TTFT 0.2, TPOT 0.1 -> meets
        _record(1, "chat", 0.5, [1.5, 1.55]),  # TTFT 1.0 -> misses
        _record(2, "long", 1.0, [2.0, 2.05, 2.1, 2.15]),  # TTFT 1.0, TPOT 0.05, E2EL 1.15 -> meets
        _record(3, "long", 1.5, [3.0 + 0.05 * i for i in range(41)]),  # TPOT 0.05 but E2EL 3.5 > 3.0 -> misses
        RequestRecord(4, "chat", 10, 5, 2.0, ended=2.5, status="error", code="RESOURCE_EXHAUSTED"),
    ]
    s = summarize(records, SLOS)
    assert (s["sent"], s["completed"], s["failed"], s["met_slo"]) == (5, 4, 1, 2)
    duration = 5.0 - 0.0  # first send to last completion
    assert s["duration_s"] == pytest.approx(duration)
    assert s["request_throughput"] == pytest.approx(4 / duration)
    assert s["output_throughput"] == pytest.approx((3 + 2 + 4 + 41) / duration)
    assert s["total_token_throughput"] == pytest.approx((4 * 10 + 50) / duration)
    assert s["goodput"] == pytest.approx(2 / duration)
    assert s["slo_attainment"] == pytest.approx(2 / 5)
    assert s["ttft_s"]["median"] == pytest.approx(1.0)  # TTFTs 0.2, 1.0, 1.0, 1.5
    assert s["ttft_s"]["mean"] == pytest.approx((0.2 + 1.0 + 1.0 + 1.5) / 4)
    assert s["e2el_s"]["p90"] == pytest.approx(1.15 + 0.7 * (3.5 - 1.15))  # linear, at position 0.9 x 3 = 2.7
    itls = [0.1, 0.1, 0.05, 0.05, 0.05, 0.05] + [0.05] * 40
    assert s["itl_s"]["mean"] == pytest.approx(sum(itls) / len(itls))
    assert s["tpot_s"]["median"] == pytest.approx(0.05)  # TPOTs 0.1, 0.05, 0.05, 0.05
    assert s["per_class"]["chat"] == {"sent": 3, "completed": 2, "met_slo": 1, "slo_attainment": pytest.approx(1 / 3),
                                      "slo": {"ttft": 0.5, "tpot": 0.1, "e2el": None}}  # fmt: skip
    assert s["per_class"]["long"]["met_slo"] == 1  # record 3 missed on E2EL alone
    assert s["errors"] == {"RESOURCE_EXHAUSTED": 1}


def test_empty_statistics_are_nan() -> None:
    s = summarize([RequestRecord(0, "chat", 10, 5, 0.0, ended=1.0, status="error", code="UNAVAILABLE")], SLOS)
    assert s["completed"] == 0 and s["slo_attainment"] == 0.0 and math.isnan(s["ttft_s"]["median"])


# ---------------------------------------------------------------- a scripted fake router

# By max_tokens: (delay before the first message, then (gap, tokens) per later message); None fails.
SCRIPT: dict[int, tuple[float, list[tuple[float, int]]] | None] = {
    1: (0.10, [(0.05, 1), (0.05, 2), (0.05, 1)]),  # a message carrying two tokens is one gap
    2: (0.40, [(0.20, 1), (0.20, 1)]),
    3: None,
    4: (0.05, []),
    5: (0.05, [(3.0, 1)] * 5),  # slow: outlives any short drain
}


class ScriptedRouter(pb_grpc.RouterServicer):
    """Streams each request as SCRIPT says (keyed by max_tokens), ending with a token-less finish message."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateResponse]:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            script = SCRIPT[request.sampling.max_tokens]
            if script is None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "scripted refusal")
            assert script is not None
            first, later = script
            await asyncio.sleep(first)
            yield pb.GenerateResponse(token_ids=[1])
            for gap, tokens in later:
                await asyncio.sleep(gap)
                yield pb.GenerateResponse(token_ids=[1] * tokens)
            await asyncio.sleep(0.2)  # a late message with no tokens must not count as one
            yield pb.GenerateResponse(finish_reason=pb.FINISH_REASON_LENGTH)
        finally:
            self.in_flight -= 1


def _plan(codes: list[int], gap: float) -> Plan:
    requests = tuple(PlannedRequest(i, "chat", 4, code, True, gap * i, i) for i, code in enumerate(codes))
    return Plan(requests, {"chat": Slo(ttft=0.3, tpot=0.1)}, skipped_at=(), policy=LengthPolicy.CLIP)


def _run(
    plan: Plan, limits: RunLimits, open_loop: bool = True, concurrency: int = 1
) -> tuple[list[RequestRecord], ScriptedRouter]:
    router = ScriptedRouter()

    async def scenario() -> list[RequestRecord]:
        server = new_server()
        pb_grpc.add_RouterServicer_to_server(router, server)
        address = bind(server, "127.0.0.1", 0)
        await server.start()
        try:
            return await run_plan(address, plan, open_loop, concurrency, limits)
        finally:
            await server.stop(0)

    return asyncio.run(scenario()), router


def test_client_measures_what_the_fake_server_scripted() -> None:
    records, _ = _run(_plan([1, 2, 3, 4], gap=0.05), RunLimits(5, warmup=0))
    tolerance = 0.03  # scheduling noise on a busy 2-core machine
    for record in records:
        script = SCRIPT[record.output_tokens_requested]
        if script is None:
            assert (record.status, record.code) == ("error", "RESOURCE_EXHAUSTED")
            assert request_metrics(record) is None
            continue
        first, later = script
        m = request_metrics(record)
        assert m is not None
        tokens = 1 + sum(n for _, n in later)
        assert m.output_tokens == tokens
        assert m.ttft == pytest.approx(first, abs=tolerance)
        assert m.itls == pytest.approx(tuple(gap for gap, _ in later), abs=tolerance)
        assert m.e2el == pytest.approx(first + sum(gap for gap, _ in later), abs=tolerance)  # not the finish message
        if tokens > 1:
            assert m.tpot == pytest.approx(sum(gap for gap, _ in later) / (tokens - 1), abs=tolerance)
    s = summarize(records, {"chat": Slo(ttft=0.3, tpot=0.1)})
    # 1: TTFT 0.1, TPOT 0.0375 -> meets; 2: TTFT 0.4 -> misses; 3 fails; 4: one token, TTFT 0.05 -> meets.
    assert (s["sent"], s["completed"], s["failed"], s["met_slo"]) == (4, 3, 1, 2)
    assert s["slo_attainment"] == pytest.approx(0.5)
    assert s["duration_s"] == pytest.approx(0.05 + 0.8, abs=tolerance)  # request 2: sent at 0.05, done 0.8 later
    assert s["goodput"] == pytest.approx(2 / s["duration_s"])


def test_open_loop_stops_sending_at_the_duration_and_excludes_warmup() -> None:
    records, router = _run(_plan([4] * 40, gap=0.05), RunLimits(duration=0.32, warmup=2))
    assert len(records) == 7  # sent at 0, 0.05, ... 0.30; the one due at 0.35 is past the duration
    assert router.calls == 7 + 2  # two warm-up requests went first and are not in the records
    assert all(r.ok for r in records) and [r.index for r in records] == list(range(7))


def test_requests_still_running_when_the_drain_ends_are_timeouts(capsys: pytest.CaptureFixture[str]) -> None:
    records, _ = _run(_plan([4, 5], gap=0.05), RunLimits(duration=1, warmup=0, drain_timeout=0.3))
    assert [r.status for r in records] == ["ok", "timeout"]
    assert request_metrics(records[1]) is None  # counted as missed, not as a completion
    progress = capsys.readouterr().err
    assert "waits at most 0.3 s for requests in flight" in progress  # said before the run starts
    # The last progress line: gRPC may log the fake router's cancelled call to stderr after it.
    last_progress = [line for line in progress.splitlines() if " done, " in line][-1]
    assert last_progress.count("2/2 done, 2 sent, 1 failed or timed out") == 1


def test_the_drain_is_bounded_by_the_request_deadline() -> None:
    assert RunLimits(request_timeout=20).drain_seconds == 20  # no request outlives its deadline
    assert RunLimits(request_timeout=20, drain_timeout=5).drain_seconds == 5
    assert RunLimits(request_timeout=20, drain_timeout=60).drain_seconds == 20
    with pytest.raises(ValueError, match="drain_timeout must be > 0, got 0"):
        RunLimits(drain_timeout=0)


def test_closed_loop_keeps_exactly_n_in_flight_until_the_duration() -> None:
    records, router = _run(_plan([4] * 200, gap=0.0), RunLimits(duration=0.6, warmup=0), open_loop=False, concurrency=3)
    assert router.most_in_flight == 3
    assert 6 <= len(records) < 200  # each takes ~0.25 s: about three rounds of three before the duration ends
    assert all(r.ok for r in records)
    assert max(r.sent for r in records) <= 0.6 + 0.05


def test_the_max_rate_needs_every_lower_rate_to_pass() -> None:
    from apps.sweep import max_rate_meeting_target

    sweep = {1.0: {"slo_attainment": 0.95}, 2.0: {"slo_attainment": 0.85}, 3.0: {"slo_attainment": 0.92}}
    assert max_rate_meeting_target(sweep) == (1.0, True)  # 3 passes again: flagged, not reported as the max
    assert max_rate_meeting_target({1.0: {"slo_attainment": 0.5}}) == (None, False)
    assert max_rate_meeting_target({1.0: {"slo_attainment": 1.0}, 2.0: {"slo_attainment": 0.9}}) == (2.0, False)
