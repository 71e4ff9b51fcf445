"""Request ids: clients may repeat theirs; a node refuses an id already in flight instead of aliasing it."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.rpc_client import complete, sampling
from tests.waiting import eventually


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_clients_may_reuse_a_request_id(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            request = pb.GenerateRequest(text="same id", sampling=sampling(30), request_id="mine")
            results = await asyncio.gather(*(complete(stub, request) for _ in range(6)))
            assert all(r.token_ids == results[0].token_ids and len(r.token_ids) == 30 for r in results)
            first = await anext(aiter(stub.Generate(request)))
            assert first.request_id == "mine"  # echoed back, though nodes saw the router's own ids
            await eventually(lambda: all(n.load().kv_bytes_held == 0 for n in c.nodes), what="all KV freed")

    asyncio.run(scenario())


def test_a_node_refuses_an_id_already_in_flight() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1) as c, insecure_channel(c.workers[0].address) as channel:
            worker = pb_grpc.WorkerStub(channel)
            request = pb.NodeRequest(request_id="dup", prompt_token_ids=[1, 2, 3], sampling=sampling(300))
            first = worker.Generate(request)
            await anext(aiter(first))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in worker.Generate(request):
                    pass
            assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
            assert "'dup'" in (caught.value.details() or "")
            tokens = 1 + sum([len(chunk.token_ids) async for chunk in first])
            assert tokens == 300  # the first one was not disturbed

    asyncio.run(scenario())


def test_a_tiny_temperature_is_greedy_and_harms_no_neighbour() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            tiny = pb.GenerateRequest(text="x", sampling=sampling(10, temperature=1e-30, seed=1))
            greedy = pb.GenerateRequest(text="x", sampling=sampling(10))
            a, b = await asyncio.gather(complete(stub, tiny), complete(stub, greedy))
            assert a.token_ids == b.token_ids and len(a.token_ids) == 10

    asyncio.run(scenario())
