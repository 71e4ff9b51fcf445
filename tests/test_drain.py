"""Graceful stop: a node or the router asked to stop refuses new requests, lets in-flight streams finish within
its drain, ends the rest with a terminal error (an error event and [DONE] over HTTP), and returns in bounded time.

Steps are slowed on purpose (`_Slowed`) so a stream outlives a second: the tiny model would finish anything first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import aiohttp
import grpc

from colocated_node.service import ColocatedNodeServer
from pdsim.core.topology import Mode
from pdsim.engine.step import ModelRunner, StepInput, StepOutput
from pdsim.node.server import NodeServer
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster, node_config
from tests.http.helpers import MODEL
from tests.rpc_client import sampling
from tests.waiting import eventually

STEP_SECONDS = 0.025  # each step sleeps this long first: 60 tokens take ~1.5 s, 900 take ~22 s
DRAIN = 4.0  # above the short stream's ~1.5 s with a loaded machine's margin; the old code waited 1 s


class _Slowed:
    def __init__(self, runner: ModelRunner) -> None:
        self._runner = runner
        self.kv = runner.kv

    def run(self, step: StepInput) -> StepOutput:
        time.sleep(STEP_SECONDS)
        return self._runner.run(step)


def _slow_down(node: NodeServer) -> None:
    node.built.engine.runner = _Slowed(node.built.engine.runner)


async def _tokens(stub: pb_grpc.WorkerStub, request_id: str, max_tokens: int) -> tuple[str, int, float]:
    """How the stream ended (OK or its status), the tokens it got, and when (time.monotonic())."""
    got = 0
    request = pb.NodeRequest(request_id=request_id, prompt_token_ids=[5, 6, 7], sampling=sampling(max_tokens))
    try:
        async for chunk in stub.Generate(request, timeout=60):
            got += len(chunk.token_ids)
        return "OK", got, time.monotonic()
    except grpc.aio.AioRpcError as error:
        return error.code().name, got, time.monotonic()


def test_a_stopping_node_finishes_short_streams_fails_long_ones_and_refuses_new_ones() -> None:
    node = ColocatedNodeServer(dataclasses.replace(node_config(max_batch=4), drain_seconds=DRAIN))

    async def scenario() -> None:
        await node.start()
        try:
            _slow_down(node)
            async with insecure_channel(node.address) as channel:
                stub = pb_grpc.WorkerStub(channel)
                short = asyncio.create_task(_tokens(stub, "short", 60))
                long = asyncio.create_task(_tokens(stub, "long", 900))
                await eventually(lambda: node.load().running == 2, what="both streams running")
                started = time.monotonic()
                stopping = asyncio.create_task(node.stop())
                await asyncio.sleep(0.2)
                late = await _tokens(stub, "late", 4)
                assert late[0] == "UNAVAILABLE", late  # refused: the caller tries another node
                assert (await short)[:2] == ("OK", 60), "the short stream did not finish within the drain"
                code, got, ended = await long
                assert code != "OK" and 0 < got < 900, (code, got)  # failed with a status, not cut silently
                assert DRAIN - 0.5 < ended - started < DRAIN + 3, ended - started
                await asyncio.wait_for(stopping, timeout=5)
                assert time.monotonic() - started < DRAIN + 4
        finally:
            await node.stop(0)

    asyncio.run(scenario())


def test_a_stopping_router_ends_every_stream_with_a_terminal_event() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            _slow_down(c.workers[0])
            body: dict[str, Any] = {"model": MODEL, "prompt": "hi", "ignore_eos": True, "stream": True}
            async with aiohttp.ClientSession() as session, insecure_channel(c.address) as channel:

                async def events(max_tokens: int) -> list[Any]:
                    seen: list[Any] = []
                    async with session.post(c.base_url + "/completions", json={**body, "max_tokens": max_tokens}) as r:
                        async for line in r.content:
                            if line.startswith(b"data: "):
                                data = line[6:].strip()
                                seen.append("[DONE]" if data == b"[DONE]" else json.loads(data))
                    return seen

                async def grpc_stream() -> str:
                    request = pb.GenerateRequest(text="hi", sampling=sampling(900))
                    try:
                        async for _ in pb_grpc.RouterStub(channel).Generate(request, timeout=60):
                            pass
                    except grpc.aio.AioRpcError as error:
                        return str(error.code().name)
                    return "OK"

                short, long = asyncio.create_task(events(60)), asyncio.create_task(events(900))
                over_grpc = asyncio.create_task(grpc_stream())
                await eventually(lambda: c.workers[0].load().running == 3, what="three streams running")
                started = time.monotonic()
                stopping = asyncio.create_task(c.router.stop(DRAIN))
                await asyncio.sleep(0.2)
                async with session.post(c.base_url + "/completions", json={**body, "max_tokens": 4}) as refused:
                    assert refused.status == 503, await refused.text()
                short_events, long_events = await short, await long
                assert short_events[-1] == "[DONE]" and short_events[-2]["choices"][0]["finish_reason"] == "length"
                assert long_events[-1] == "[DONE]", long_events[-3:]  # never cut without a terminal event
                assert "shut down" in long_events[-2]["error"]["message"], long_events[-2]
                assert await over_grpc == "UNAVAILABLE"
                await asyncio.wait_for(stopping, timeout=5)
                assert DRAIN - 0.5 < time.monotonic() - started < DRAIN + 4

    asyncio.run(scenario())
