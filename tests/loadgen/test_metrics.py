"""Metric math against timings known exactly, and a scripted fake router measured through the real client."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import grpc
import pytest

from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.metrics import met_slo, request_metrics, summarize
from loadgen.mix import Slo
from loadgen.records import RequestRecord
from loadgen.runner import RunLimits, run_plan
from loadgen.workload import LengthPolicy, Plan, PlannedRequest
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
        _record(3, "long", 1.5, [3.0] + [3.0 + 0.2 * i for i in range(1, 10)]),  # E2EL 3.3 > 3.0 -> misses
        RequestRecord(4, "chat", 10, 5, 2.0, ended=2.5, status="error", code="RESOURCE_EXHAUSTED"),
    ]
    s = summarize(records, SLOS)
    assert (s["sent"], s["completed"], s["failed"], s["met_slo"]) == (5, 4, 1, 2)
    duration = 4.8 - 0.0  # first send to last completion
    assert s["duration_s"] == pytest.approx(duration)
    assert s["request_throughput"] == pytest.approx(4 / duration)
    assert s["output_throughput"] == pytest.approx((3 + 2 + 4 + 10) / duration)
    assert s["total_token_throughput"] == pytest.approx((4 * 10 + 19) / duration)
    assert s["goodput"] == pytest.approx(2 / duration)
    assert s["slo_attainment"] == pytest.approx(2 / 5)
    assert s["ttft_s"]["median"] == pytest.approx(1.0)  # TTFTs 0.2, 1.0, 1.0, 1.5
    assert s["ttft_s"]["mean"] == pytest.approx((0.2 + 1.0 + 1.0 + 1.5) / 4)
    assert s["e2el_s"]["p90"] == pytest.approx(1.15 + 0.7 * (3.3 - 1.15))  # linear, at position 0.9 x 3 = 2.7
    itls = [0.1, 0.1, 0.05, 0.05, 0.05, 0.05] + [0.2] * 9
    assert s["itl_s"]["mean"] == pytest.approx(sum(itls) / len(itls))
    assert s["tpot_s"]["median"] == pytest.approx((0.1 + 0.05) / 2)  # TPOTs 0.1, 0.05, 0.05, 0.2
    assert s["per_class"]["chat"] == {"sent": 3, "completed": 2, "met_slo": 1, "slo_attainment": pytest.approx(1 / 3),
                                      "slo": {"ttft": 0.5, "tpot": 0.1, "e2el": None}}  # fmt: skip
    assert s["errors"] == {"RESOURCE_EXHAUSTED": 1}


def test_empty_statistics_are_nan() -> None:
    s = summarize([RequestRecord(0, "chat", 10, 5, 0.0, ended=1.0, status="error", code="UNAVAILABLE")], SLOS)
    assert s["completed"] == 0 and s["slo_attainment"] == 0.0 and math.isnan(s["ttft_s"]["median"])


# ---------------------------------------------------------------- a scripted fake router

# Per request: (delay before the first token, gaps before each later token); None fails the request.
SCRIPT: dict[int, tuple[float, list[float]] | None] = {
    0: (0.10, [0.05, 0.05, 0.05]),
    1: (0.40, [0.20, 0.20]),
    2: None,
    3: (0.05, []),
}


class ScriptedRouter(pb_grpc.RouterServicer):
    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateResponse]:
        script = SCRIPT[request.sampling.max_tokens - 1]  # the plan below encodes the script index in max_tokens
        if script is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "scripted refusal")
        assert script is not None
        first, gaps = script
        await asyncio.sleep(first)
        yield pb.GenerateResponse(token_ids=[1])
        for gap in gaps:
            await asyncio.sleep(gap)
            yield pb.GenerateResponse(token_ids=[1])


def test_client_measures_what_the_fake_server_scripted() -> None:
    plan = Plan(
        tuple(PlannedRequest(i, "chat", 4, i + 1, True, 0.05 * i, i) for i in SCRIPT),
        {"chat": Slo(ttft=0.3, tpot=0.1)},
        adjusted=0,
        skipped=0,
        policy=LengthPolicy.CLIP,
    )

    async def scenario() -> list[RequestRecord]:
        server = new_server()
        pb_grpc.add_RouterServicer_to_server(ScriptedRouter(), server)
        address = bind(server, "127.0.0.1", 0)
        await server.start()
        try:
            return await run_plan(address, plan, Arrivals(ArrivalKind.CONSTANT, rate=20), RunLimits(5, warmup=0))
        finally:
            await server.stop(0)

    records = asyncio.run(scenario())
    tolerance = 0.03  # scheduling noise on a busy 2-core machine
    for record in records:
        script = SCRIPT[record.index]
        if script is None:
            assert (record.status, record.code) == ("error", "RESOURCE_EXHAUSTED")
            continue
        m = request_metrics(record)
        assert m is not None
        assert m.ttft == pytest.approx(script[0], abs=tolerance)
        assert m.itls == pytest.approx(tuple(script[1]), abs=tolerance)
    s = summarize(records, plan.slos)
    # 0: TTFT 0.1, TPOT 0.05 -> meets; 1: TTFT 0.4 -> misses; 2 fails; 3: one token, TTFT 0.05 -> meets.
    assert (s["sent"], s["completed"], s["failed"], s["met_slo"]) == (4, 3, 1, 2)
    assert s["slo_attainment"] == pytest.approx(0.5)


def test_report_verdicts_call_small_differences_a_tie() -> None:
    from loadgen.report import verdict

    assert verdict(120.0, 100.0) == "holds here"
    assert verdict(100.0, 120.0) == "does **not** hold here"
    assert verdict(87.0, 86.0).startswith("no clear difference")
    assert verdict(math.nan, 1.0) == "not measurable here"
