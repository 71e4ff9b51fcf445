"""A request's timeline: the router returns it with the last message, in both modes and on both APIs; its
stages before the first token add up to the router's TTFT, and each is also a Prometheus histogram."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import grpc
import pytest

from pdsim.core.timeline import AFTER_FIRST_TOKEN, TTFT, TTFT_STAGES
from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import timeline_from_pb
from tests.cluster import cluster
from tests.http.helpers import post
from tests.scrape import scrape, value

PROMPT = "The quick brown fox jumps over the lazy dog " * 6


async def _generate(address: str, max_tokens: int = 8) -> tuple[list[pb.GenerateResponse], float]:
    """The responses, and the client's own TTFT."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterStub(channel)
        request = pb.GenerateRequest(text=PROMPT, sampling=pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True))
        sent = time.perf_counter()
        responses, first = [], None
        async for response in stub.Generate(request):
            first = first or time.perf_counter()
            responses.append(response)
    assert first is not None
    return responses, first - sent


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_the_stages_add_up_to_the_routers_ttft(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1) as c:
            for _ in range(3):
                responses, client_ttft = await _generate(c.address)
                assert all(not r.HasField("timeline") for r in responses[:-1])
                timeline = timeline_from_pb(responses[-1].timeline)
                stages = timeline.ttft_stages()
                assert set(stages) == set(TTFT_STAGES)
                assert all(v >= 0 for k, v in stages.items() if k != "transport")
                assert abs(sum(stages.values()) - timeline.seconds[TTFT]) < 0.003, timeline
                assert 0 < timeline.seconds[TTFT] <= client_ttft  # the router sees less than its client does
                assert stages["prefill"] > 0 and abs(stages["transport"]) < 0.05, stages
                if mode is Mode.DISAGGREGATED:
                    assert set(AFTER_FIRST_TOKEN) <= set(timeline.seconds)
                    assert timeline.kv_bytes > 0 and timeline.kv_chunks > 0
                    assert [n.split("-")[0] for n in timeline.nodes] == ["prefill", "decode"]
                    assert timeline.seconds["kv_handoff"] >= timeline.seconds["kv_push"] * 0.5
                else:
                    assert [n.split("-")[0] for n in timeline.nodes] == ["colocated"]
                assert not any(":" in n for n in timeline.nodes)  # names, never addresses
            samples = scrape(c.router.metrics_endpoint.address)
            assert value(samples, "pdsim_request_stage_seconds_count", stage="prefill") == 3

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_http_returns_the_timeline_when_asked(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c:
            body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 6, "ignore_eos": True}
            status, plain = await post(c, "/completions", body)
            assert status == 200 and "pdsim" not in plain
            status, whole = await post(c, "/completions", body | {"pdsim_timeline": True})
            assert status == 200 and set(TTFT_STAGES) <= set(whole["pdsim"]["timeline"]["seconds"])
            streamed = body | {"stream": True, "pdsim_timeline": True}
            async with (
                aiohttp.ClientSession() as session,
                session.post(c.base_url + "/completions", json=streamed) as r,
            ):
                raw = (await r.read()).decode()
            chunks = [json.loads(line[6:]) for line in raw.split("\n\n") if line.startswith("data: {")]
            with_timeline = [chunk for chunk in chunks if "pdsim" in chunk]
            assert len(with_timeline) == 1 and with_timeline[0]["choices"][0]["finish_reason"] == "length"
            timeline = with_timeline[0]["pdsim"]["timeline"]
            assert abs(sum(timeline["seconds"][s] for s in TTFT_STAGES) - timeline["seconds"][TTFT]) < 0.003

    asyncio.run(scenario())
