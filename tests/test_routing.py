"""Routing under refusal and deadlines: a full decode node is skipped, a deadline ends the request everywhere."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from router.config import Mode, Policy
from tests.cluster import cluster, node_config
from tests.rpc_client import complete, sampling
from tests.waiting import eventually

PROMPT = pb.TokenIds(ids=list(range(1, 61)))  # 60 tokens


def test_kv_goes_to_the_next_decode_node_when_the_first_is_full() -> None:
    full, roomy = node_config(staging_tokens=20), node_config()

    async def scenario() -> None:
        async with (
            cluster(Mode.DISAGGREGATED, decode_configs=[full, roomy], policy=Policy.ROUND_ROBIN) as c,
            insecure_channel(c.address) as channel,
        ):
            stub = pb_grpc.RouterStub(channel)
            for _ in range(2):  # round-robin puts the full node first at least once
                result = await complete(stub, pb.GenerateRequest(token_ids=PROMPT, sampling=sampling(8)))
                assert len(result.token_ids) == 8
            assert c.decode[0].built.engine.steps == 0
            assert c.decode[1].built.engine.steps > 0

    asyncio.run(scenario())


def test_every_decode_node_full_is_resource_exhausted() -> None:
    async def scenario() -> None:
        async with (
            cluster(Mode.DISAGGREGATED, config=node_config(staging_tokens=20)) as c,
            insecure_channel(c.address) as channel,
        ):
            stub = pb_grpc.RouterStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await complete(stub, pb.GenerateRequest(token_ids=PROMPT, sampling=sampling(8)))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "no room" in (caught.value.details() or "")
            await eventually(lambda: c.prefill[0].load().kv_bytes_held == 0, what="prefill KV freed")

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_a_deadline_ends_the_request_and_frees_its_kv(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            request = pb.GenerateRequest(text="slow", sampling=sampling(900))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stub.Generate(request, timeout=0.3):
                    pass
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await eventually(
                lambda: all(n.load().kv_bytes_held == 0 and n.load().running == 0 for n in c.nodes),
                what="every node idle with no KV",
            )

    asyncio.run(scenario())
