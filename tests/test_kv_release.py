"""A cancelled request frees its KV at once (the router has the decode nodes release it), so a burst of clients
that leave right after the KV push cannot fill a small staging arena and starve everyone else for a lease.

The window between the push and the start of decoding is milliseconds in one process; across hosts or on a loaded
machine it is wider. `_SlowPrefill` widens it on purpose: a relay in front of the real prefill node that holds each
Prefill stream open for a moment after the KV is delivered, so a client that leaves right after the push leaves
before the router has sent its Decode, every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from decode_node.service import DecodeNodeServer
from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel, new_server
from prefill_node.service import PrefillNodeServer
from router.config import Policy, RouterConfig
from router.server import RouterServer
from tests.cluster import node_config
from tests.kv_messages import kv_messages
from tests.rpc_client import sampling
from tests.waiting import eventually

PROMPT = list(range(10, 58))  # 48 tokens: the staging arena below holds three such prompts' KV
LOAD = 12  # requests in each measured wave
HOLD_SECONDS = 0.3  # the relay's pause between "KV delivered" and the end of the Prefill stream


class _SlowPrefill(pb_grpc.PrefillServicer, pb_grpc.NodeServicer):
    """Relays Prefill and the Node service to a real prefill node, pausing after the KV is delivered."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._prefill = pb_grpc.PrefillStub(channel)
        self._node = pb_grpc.NodeStub(channel)

    async def Prefill(
        self, request: pb.PrefillRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PrefillEvent]:
        async for event in self._prefill.Prefill(request):
            yield event
            if event.HasField("kv_delivered"):
                await asyncio.sleep(HOLD_SECONDS)

    async def GetInfo(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.NodeInfo:
        info: pb.NodeInfo = await self._node.GetInfo(request)
        return info

    async def GetLoad(self, request: pb.LoadRequest, context: grpc.aio.ServicerContext) -> pb.LoadReport:
        load: pb.LoadReport = await self._node.GetLoad(request)
        return load


@contextlib.asynccontextmanager
async def _cluster_with_slow_prefill() -> AsyncIterator[tuple[RouterServer, PrefillNodeServer, DecodeNodeServer]]:
    config = node_config(staging_tokens=3 * len(PROMPT), max_batch=4)  # the default 30 s lease
    prefill, decode = PrefillNodeServer(config), DecodeNodeServer(config)
    relay = new_server()
    router: RouterServer | None = None
    try:
        await prefill.start()
        await decode.start()
        async with insecure_channel(prefill.address) as channel:
            servicer = _SlowPrefill(channel)
            pb_grpc.add_PrefillServicer_to_server(servicer, relay)
            pb_grpc.add_NodeServicer_to_server(servicer, relay)
            port = relay.add_insecure_port("127.0.0.1:0")
            await relay.start()
            router = RouterServer(
                RouterConfig(
                    mode=Mode.DISAGGREGATED, prefill=(f"127.0.0.1:{port}",), decode=(decode.address,),
                    policy=Policy.ROUND_ROBIN, port=0, http_port=None,
                )
            )  # fmt: skip
            await router.start()
            yield router, prefill, decode
    finally:
        if router is not None:
            await router.stop(0)
        await relay.stop(0)
        await prefill.stop(0)
        await decode.stop(0)


async def _wave(stub: pb_grpc.RouterStub, concurrency: int = 3) -> tuple[int, float]:
    """`LOAD` requests, `concurrency` at a time: how many succeeded, and the wave's seconds."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> bool:
        async with gate:
            request = pb.GenerateRequest(token_ids=pb.TokenIds(ids=PROMPT), sampling=sampling(16))
            try:
                async for response in stub.Generate(request, timeout=30):
                    if response.finish_reason:
                        return True
            except grpc.aio.AioRpcError:
                return False
            return False

    started = time.monotonic()
    results = await asyncio.gather(*(one() for _ in range(LOAD)))
    return sum(results), time.monotonic() - started


async def _leave_after_the_push(stub: pb_grpc.RouterStub, decode: DecodeNodeServer) -> None:
    """A client that goes away once its KV is staged, before its Decode starts."""
    call = stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=PROMPT), sampling=sampling(200)), timeout=30)
    async for _ in call:  # the first token; the push follows it
        break
    await asyncio.sleep(HOLD_SECONDS / 3)
    call.cancel()


def test_a_cancel_burst_after_the_push_leaves_goodput_and_frees_every_byte() -> None:
    async def scenario() -> None:
        async with _cluster_with_slow_prefill() as (router, prefill, decode):
            async with insecure_channel(router.address) as channel:
                stub = pb_grpc.RouterStub(channel)
                baseline, baseline_seconds = await _wave(stub)
                assert baseline == LOAD
                for _ in range(3):  # bursts of clients leaving right after the push: more KV than staging holds
                    await asyncio.gather(*(_leave_after_the_push(stub, decode) for _ in range(3)))
                await eventually(
                    lambda: (
                        (len(decode.staging), decode.load().kv_bytes_held, prefill.load().kv_bytes_held) == (0, 0, 0)
                    ),
                    what="every cancelled request's KV freed (not held for its 30 s lease)",
                )
                after, after_seconds = await _wave(stub)
            # Goodput within 10% of the run without cancels; the waves' times get a loaded machine's margin.
            assert after >= 0.9 * baseline, f"{after} of {LOAD} succeeded after the cancels (baseline {baseline})"
            goodput, goodput_baseline = after / after_seconds, baseline / baseline_seconds
            assert goodput >= 0.5 * goodput_baseline, f"{goodput:.2f} req/s after the cancels, {goodput_baseline:.2f}"
            await eventually(lambda: decode.load().kv_bytes_held == 0, what="decode KV freed after the load")

    asyncio.run(scenario())


def test_a_push_that_stalls_after_its_header_frees_its_staging_on_the_node() -> None:
    node = DecodeNodeServer(node_config(kv_push_stall_seconds=0.5))

    async def scenario() -> None:
        await node.start()
        try:
            async with insecure_channel(node.address) as channel:
                header = next(kv_messages(node, "stalled", 40))

                async def header_then_nothing() -> AsyncIterator[pb.KvMessage]:
                    yield header
                    await asyncio.Event().wait()  # the sender hangs: it never sends a chunk, nor closes

                push = pb_grpc.DecodeStub(channel).PushKv(header_then_nothing(), timeout=20)
                await eventually(lambda: node.load().kv_bytes_held > 0, what="the push reserved its space")
                started = time.monotonic()
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await push
                assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "sent nothing for 0.5 s" in (refused.value.details() or "")
                assert time.monotonic() - started < 5  # the stall limit, with a loaded machine's margin; not 20 s
                assert (node.load().kv_bytes_held, len(node.staging)) == (0, 0)
        finally:
            await node.stop(0)

    asyncio.run(scenario())
