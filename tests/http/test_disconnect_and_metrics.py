"""A client that disconnects mid-stream frees the request's KV on the node serving it; requests through HTTP
show up in the router's metrics as gRPC requests do."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from pdsim.core.topology import Mode
from tests.cluster import cluster
from tests.http.helpers import IGNORE_EOS, MODEL, metric, openai_client, post
from tests.waiting import eventually


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
@pytest.mark.parametrize("endpoint", ["/completions", "/chat/completions"])
def test_a_client_that_disconnects_mid_stream_frees_its_kv(mode: Mode, endpoint: str) -> None:
    prompt = (
        {"prompt": "a long one"} if endpoint == "/completions" else {"messages": [{"role": "user", "content": "a"}]}
    )
    body = {"model": MODEL, "max_tokens": 900, "ignore_eos": True, "stream": True, **prompt}

    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c:
            serving = c.workers[0] if mode is Mode.COLOCATED else c.decode[0]
            async with aiohttp.ClientSession() as session:
                response = await session.post(c.base_url + endpoint, json=body)
                assert response.status == 200
                events = 0
                async for line in response.content:
                    events += line.startswith(b"data: ")
                    if events == 5:
                        break
                assert serving.load().running == 1 and serving.load().kv_bytes_held > 0
                response.close()  # drops the connection mid-stream
            await eventually(
                lambda: all((n.load().running, n.load().kv_bytes_held) == (0, 0) for n in c.nodes),
                what="the disconnect freed the KV",
            )
            assert serving.built.engine.steps < 200, "the node kept decoding after the client left"
            assert await metric(c, "pdsim_requests_total", outcome="cancelled") == 1

    asyncio.run(scenario())


def test_the_openai_sdk_closing_a_stream_frees_its_kv() -> None:
    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, http=True) as c:
            client = openai_client(c)
            stream = await client.completions.create(
                model=MODEL, prompt="a long one", max_tokens=900, stream=True, extra_body=IGNORE_EOS
            )
            received = 0
            async for _ in stream:
                received += 1
                if received == 5:
                    break
            await stream.close()
            await eventually(
                lambda: all((n.load().running, n.load().kv_bytes_held) == (0, 0) for n in c.nodes),
                what="closing the stream freed the KV",
            )

    asyncio.run(scenario())


def test_a_client_that_gives_up_on_a_whole_response_frees_its_kv() -> None:
    """Nothing is written to a non-streamed response until it is done: only the handler's cancellation on
    disconnect can notice that the client left."""

    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, http=True) as c:
            client = openai_client(c).with_options(timeout=0.5)  # 1,000 tokens take seconds here
            with pytest.raises(openai.APITimeoutError):
                await client.completions.create(model=MODEL, prompt="slow", max_tokens=1000, extra_body=IGNORE_EOS)
            await eventually(
                lambda: all((n.load().running, n.load().kv_bytes_held) == (0, 0) for n in c.nodes),
                what="the abandoned request freed its KV",
            )
            assert c.decode[0].built.engine.steps < 999, "the node decoded the whole request for nobody"

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_http_requests_show_in_the_router_metrics(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c:
            client = openai_client(c)
            await client.completions.create(model=MODEL, prompt="hi", max_tokens=5, extra_body=IGNORE_EOS)
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=7, stream=True,
                extra_body=IGNORE_EOS,
            )  # fmt: skip
            async for _ in stream:
                pass
            status, _ = await post(c, "/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 0})
            assert status == 400
            status, _ = await post(c, "/completions", {"model": MODEL, "prompt": "hi", "temperature": "hot"})
            assert status == 400
            assert await metric(c, "pdsim_requests_total", outcome="ok") == 2
            assert await metric(c, "pdsim_requests_total", outcome="invalid_argument") == 2
            assert await metric(c, "pdsim_time_to_first_token_seconds_count") == 2
            assert await metric(c, "pdsim_e2e_request_latency_seconds_count") == 2
            assert await metric(c, "pdsim_generation_tokens_total") == 5 + 7
            assert await metric(c, "pdsim_num_requests_running") == 0

    asyncio.run(scenario())
