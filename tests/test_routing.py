"""Routing under refusal and deadlines: a full decode node is skipped, a deadline ends the request everywhere."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pdsim.core.errors import FailedPrecondition, PdsimError
from pdsim.core.topology import Mode
from pdsim.kv.staging import KvStaging, StagedEntry
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from router.config import Policy
from tests.cluster import cluster, node_config
from tests.kv_messages import kv_messages
from tests.rpc_client import complete, sampling
from tests.waiting import eventually

PROMPT = pb.TokenIds(ids=list(range(1, 61)))  # 60 tokens


def test_kv_goes_to_the_next_decode_node_when_the_first_cannot_hold_it() -> None:
    small, roomy = node_config(staging_tokens=20), node_config()

    async def scenario() -> None:
        async with (
            cluster(Mode.DISAGGREGATED, decode_configs=[small, roomy], policy=Policy.ROUND_ROBIN) as c,
            insecure_channel(c.address) as channel,
        ):
            refused = _record_refusals(c.decode[0].staging)
            stub = pb_grpc.RouterStub(channel)
            for _ in range(2):  # round-robin ranks the small node first for one of the two
                result = await complete(stub, pb.GenerateRequest(token_ids=PROMPT, sampling=sampling(8)))
                assert len(result.token_ids) == 8
            assert refused == [FailedPrecondition]  # the small node was tried, refused, and the next one took it
            assert c.decode[0].built.engine.steps == 0
            assert c.decode[1].built.engine.steps > 0

    asyncio.run(scenario())


def _record_refusals(staging: KvStaging) -> list[type[PdsimError]]:
    """Record each reservation `staging` refuses (the errors' types), in a list that fills as it happens."""
    refused: list[type[PdsimError]] = []
    reserve = staging.reserve

    def spy(request_id: str, num_tokens: int) -> StagedEntry:
        try:
            return reserve(request_id, num_tokens)
        except PdsimError as error:
            refused.append(type(error))
            raise

    staging.reserve = spy  # type: ignore[method-assign]
    return refused


def test_a_full_decode_node_is_resource_exhausted_and_one_too_small_is_failed_precondition() -> None:
    async def scenario() -> None:
        async with (
            cluster(Mode.DISAGGREGATED, config=node_config(staging_tokens=100)) as c,
            insecure_channel(c.address) as channel,
        ):
            stub = pb_grpc.RouterStub(channel)
            decode = c.decode[0]
            async with insecure_channel(decode.address) as node_channel:  # occupy 50 of its 100 staging tokens
                await pb_grpc.DecodeStub(node_channel).PushKv(kv_messages(decode, "squatter", 50))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await complete(stub, pb.GenerateRequest(token_ids=PROMPT, sampling=sampling(8)))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "no room for" in (caught.value.details() or "")
            too_long = pb.TokenIds(ids=[1] * 200)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await complete(stub, pb.GenerateRequest(token_ids=too_long, sampling=sampling(8)))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "can never fit" in (caught.value.details() or "")
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


@pytest.mark.parametrize("policy", [Policy.ROUND_ROBIN, Policy.LEAST_LOADED])
def test_both_policies_spread_requests_over_every_pool(policy: Policy) -> None:
    async def scenario() -> None:
        async with (
            cluster(Mode.DISAGGREGATED, prefill=2, decode=2, policy=policy) as c,
            insecure_channel(c.address) as channel,
        ):
            stub = pb_grpc.RouterStub(channel)
            burst = [complete(stub, pb.GenerateRequest(text=f"burst {i}", sampling=sampling(20))) for i in range(8)]
            await asyncio.gather(*burst)
            for pool in (c.prefill, c.decode):
                steps = [node.built.engine.steps for node in pool]
                assert all(s > 0 for s in steps), f"{policy.value}: a node got nothing {steps}"

    asyncio.run(scenario())


def test_every_worker_down_is_unavailable() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1) as c, insecure_channel(c.address) as channel:
            await c.workers[0].stop(0)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await complete(pb_grpc.RouterStub(channel), pb.GenerateRequest(text="hi", sampling=sampling(4)))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()

    asyncio.run(scenario())
