"""What the router's fronts show of the cluster (the served model's name, no addresses, no paths) and the HTTP
API's optional key."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import openai
import pytest

from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.http.helpers import IGNORE_EOS, MODEL, openai_client
from tests.rpc_client import complete, sampling


def test_models_show_the_served_name_and_never_the_checkpoint_path() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c, aiohttp.ClientSession() as session:
            async with session.get(c.base_url + "/models") as response:
                listing = await response.json()
            (card,) = listing["data"]
            assert card["id"] == card["root"] == MODEL and card["max_model_len"] == 1024
            assert str(c.workers[0].built.info.path) not in str(listing) and "/" not in str(listing)
            async with insecure_channel(c.address) as channel:
                info = await pb_grpc.NodeStub(channel).GetInfo(pb.InfoRequest())
            assert (info.model_name, info.model_path, info.role) == (MODEL, "", "router")

        async with cluster(Mode.COLOCATED, workers=1, http=True, served_model_name="pdsim-tiny") as c:
            client = openai_client(c)
            assert [m.id async for m in client.models.list()] == ["pdsim-tiny"]
            done = await client.completions.create(model="pdsim-tiny", prompt="hi", max_tokens=3, extra_body=IGNORE_EOS)
            assert done.model == "pdsim-tiny" and done.usage is not None and done.usage.completion_tokens == 3
            with pytest.raises(openai.NotFoundError):
                await client.completions.create(model=MODEL, prompt="hi", max_tokens=3)

    asyncio.run(scenario())


def test_a_node_failure_reaches_grpc_clients_without_its_address() -> None:
    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED) as c, insecure_channel(c.address) as channel:
            await c.prefill[0].stop(0)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await complete(pb_grpc.RouterStub(channel), pb.GenerateRequest(text="hi", sampling=sampling(4)))
            details = caught.value.details() or ""
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, details
            assert details.startswith("no prefill node could take the request: prefill-0: UNAVAILABLE"), details
            assert "127.0.0.1" not in details and ":" + c.prefill[0].address.split(":")[1] not in details, details

    asyncio.run(scenario())


def test_an_api_key_guards_v1_and_leaves_metrics_open() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True, api_key="s3cret") as c:
            async with aiohttp.ClientSession() as session:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                    async with session.get(c.base_url + "/models", headers=headers) as response:
                        assert response.status == 401, headers
                        assert response.headers["WWW-Authenticate"] == "Bearer"
                        error = (await response.json())["error"]
                    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
                    assert "s3cret" not in error["message"]
                body = {"model": MODEL, "prompt": "hi", "max_tokens": 2}
                async with session.post(c.base_url + "/completions", json=body) as response:
                    assert response.status == 401  # refused before the body is read or the request admitted
                metrics_url = c.base_url.removesuffix("/v1") + "/metrics"
                async with session.get(metrics_url) as response:
                    assert response.status == 200 and "pdsim_requests_total" in await response.text()
            with pytest.raises(openai.AuthenticationError):
                await openai_client(c).models.list()
            keyed = openai.AsyncOpenAI(base_url=c.base_url, api_key="s3cret", max_retries=0)
            done = await keyed.completions.create(model=MODEL, prompt="hi", max_tokens=3, extra_body=IGNORE_EOS)
            assert done.usage is not None and done.usage.completion_tokens == 3

    asyncio.run(scenario())
