"""Bad requests get OpenAI's error shape with the right HTTP status and the field they are about; load refusals
and a cluster with no node to serve are 503 with Retry-After; the router keeps serving."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest

from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster, node_config
from tests.http.helpers import IGNORE_EOS, MODEL, openai_client, post
from tests.kv_messages import kv_messages

COMPLETION = {"model": MODEL, "prompt": "hi", "max_tokens": 4}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
PROMPT_BYTES = 1023 * 7  # the tiny preset's: a token of its context left, 7 bytes at most a token ("<|bos|>")


# (path, body, the field named in `param`, a fragment of the message)
BAD_REQUESTS: list[tuple[str, Any, str | None, str]] = [
    ("/completions", COMPLETION | {"max_tokens": -1}, "max_tokens", "max_tokens must be > 0, got -1"),
    ("/completions", COMPLETION | {"max_tokens": "8"}, "max_tokens", "max_tokens must be an integer, got '8'"),
    ("/completions", COMPLETION | {"max_tokens": 2000}, "max_tokens", "exceeds the model's context of 1024"),
    ("/completions", COMPLETION | {"temperature": -1}, "temperature", "temperature must be >= 0, got -1.0"),
    ("/completions", COMPLETION | {"temperature": "hot"}, "temperature", "temperature must be a number, got 'hot'"),
    ("/completions", COMPLETION | {"top_p": 1.5}, "top_p", "top_p must be in (0, 1], got 1.5"),
    ("/completions", COMPLETION | {"seed": -3}, "seed", "seed must be in [0, 2**64), got -3"),
    ("/completions", COMPLETION | {"seed": 2**70}, "seed", f"got {2**70}"),
    ("/completions", COMPLETION | {"top_k": 2**40}, "top_k", "top_k must be in [0, 2147483647]"),
    ("/completions", COMPLETION | {"temperature": 1e300}, "temperature", "temperature must be <= 1000"),
    ("/completions", COMPLETION | {"stop": [str(i) for i in range(17)]}, "stop", "at most 16 strings"),
    ("/completions", COMPLETION | {"stream_options": {"include_usage": True}}, "stream_options", "only allowed"),
    ("/completions", b'{"max_tokens": ' + b"9" * 5000 + b"}", None, "not valid JSON"),
    ("/completions", b"[" * 100_000 + b"]" * 100_000, None, "not valid JSON"),
    ("/completions", COMPLETION | {"stream": "yes"}, "stream", "stream must be true or false, got 'yes'"),
    ("/completions", {"model": MODEL, "max_tokens": 4}, "prompt", "prompt is missing"),
    ("/completions", COMPLETION | {"prompt": ""}, "prompt", "prompt is empty"),
    ("/completions", COMPLETION | {"prompt": [1, "a"]}, "prompt", "a string or a list of token ids"),
    ("/completions", COMPLETION | {"prompt": ["a", "b"]}, "prompt", "batches are not supported"),
    ("/completions", COMPLETION | {"prompt": [1, 5000]}, "prompt", "prompt token id 5000 is outside"),
    ("/completions", COMPLETION | {"stop": [""]}, "stop", "stop strings must be non-empty"),
    ("/completions", COMPLETION | {"stop": 3}, "stop", "stop must be a string or a list of strings"),
    ("/completions", COMPLETION | {"n": 2}, "n", "n must be 1"),
    ("/completions", COMPLETION | {"logprobs": 21}, "logprobs", "logprobs must be in [0, 20], got 21"),
    ("/completions", COMPLETION | {"logprobs": -1}, "logprobs", "logprobs must be in [0, 20], got -1"),
    ("/completions", COMPLETION | {"logprobs": True}, "logprobs", "logprobs must be an integer"),
    ("/completions", COMPLETION | {"top_logprobs": 2}, "top_logprobs", "top_logprobs is a chat completions field"),
    ("/completions", COMPLETION | {"echo": True}, "echo", "echo is not supported"),
    (
        "/completions",
        COMPLETION | {"stream": True, "stream_options": {"include_usage": 1}},
        "stream_options",
        "include_usage",
    ),
    ("/completions", [COMPLETION], None, "must be a JSON object"),
    ("/completions", b"{not json", None, "not valid JSON"),
    ("/chat/completions", {"model": MODEL}, "messages", "messages is missing"),
    ("/chat/completions", CHAT | {"messages": []}, "messages", "messages must be a non-empty list"),
    ("/chat/completions", CHAT | {"messages": [{"content": "x"}]}, "messages", "messages[0].role must be"),
    (
        "/chat/completions",
        CHAT | {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "messages",
        "only text parts are supported, got 'image_url'",
    ),
    ("/chat/completions", CHAT | {"tools": [{"type": "function"}]}, "tools", "tools are not supported"),
    ("/chat/completions", CHAT | {"max_completion_tokens": 0}, "max_tokens", "max_tokens must be > 0, got 0"),
    ("/completions", COMPLETION | {"guided_regex": "a+"}, "guided_regex", "guided_regex is not a field pdsim"),
    ("/chat/completions", CHAT | {"n": 3}, "n", "n must be 1"),
    ("/chat/completions", CHAT | {"top_logprobs": 2}, "top_logprobs", "top_logprobs needs logprobs: true"),
    ("/chat/completions", CHAT | {"logprobs": True, "top_logprobs": 21}, "top_logprobs", "must be in [0, 20]"),
    ("/chat/completions", CHAT | {"logprobs": 3}, "logprobs", "logprobs must be true or false"),
    ("/completions", COMPLETION | {"min_p": 1.5}, "min_p", "min_p must be in [0, 1], got 1.5"),
    ("/completions", COMPLETION | {"min_tokens": 5}, "min_tokens", "min_tokens must be in [0, max_tokens=4]"),
    ("/completions", COMPLETION | {"stop_token_ids": [9999]}, "stop_token_ids", "holds 9999, outside"),
    ("/completions", COMPLETION | {"stop_token_ids": 3}, "stop_token_ids", "must be a list of token ids"),
    ("/completions", COMPLETION | {"include_stop_str_in_output": 1}, "include_stop_str_in_output", "true or"),
    # float32 makes this 0 on the nodes: the router refuses it, by name, as they would.
    ("/completions", COMPLETION | {"top_p": 1e-50}, "top_p", "got 1e-50 (0.0 in float32"),
    # A lone surrogate, which JSON spells "\ud800" (json.dumps writes it so) and no tokenizer reads.
    ("/completions", COMPLETION | {"prompt": "\ud800"}, "prompt", "prompt is not valid Unicode"),
    ("/completions", COMPLETION | {"prompt": "a\udfffb"}, "prompt", "lone surrogate U+DFFF at character 1"),
    ("/completions", COMPLETION | {"stop": "\ud800"}, "stop", "stop is not valid Unicode"),
    ("/completions", COMPLETION | {"request_class": "\ud800"}, "request_class", "not valid Unicode"),
    ("/chat/completions", CHAT | {"messages": [{"role": "user", "content": "\ud800"}]}, "messages", "content is not"),
    # Over what the context can hold: refused by its size in bytes, before it is tokenized.
    ("/completions", COMPLETION | {"prompt": "x" * 1_000_000}, "prompt", f"over the limit of {PROMPT_BYTES} bytes"),
    ("/chat/completions", CHAT | {"messages": [{"role": "user", "content": "x" * PROMPT_BYTES}]}, "messages", "bytes"),
]


def test_bad_requests_get_400_in_openai_shape_and_the_router_keeps_serving() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            for path, body, param, message in BAD_REQUESTS:
                status, reply = await post(c, path, body)
                assert status == 400, (path, body, reply)
                error = reply["error"]
                assert set(error) == {"message", "type", "param", "code"}
                assert error["type"] == "invalid_request_error"
                assert error["param"] == param, (body, error)
                assert message in error["message"], (body, error)
                assert "127.0.0.1" not in error["message"], error  # nor any other node address

            status, reply = await post(c, "/completions", COMPLETION | {"model": "gpt-4"})
            assert status == 404
            assert reply["error"]["code"] == "model_not_found" and "gpt-4" in reply["error"]["message"]
            status, reply = await post(c, "/embeddings", {"model": MODEL, "input": "x"})
            assert status == 404 and "message" in reply["error"]
            async with aiohttp.ClientSession() as session, session.get(c.base_url + "/completions") as response:
                assert response.status == 405 and response.headers["Allow"] == "POST"
                assert "message" in (await response.json())["error"]
            headers = {"Content-Type": "application/json; charset=bogus"}
            async with (
                aiohttp.ClientSession() as session,
                session.post(c.base_url + "/completions", data=b"{}", headers=headers) as response,
            ):
                assert response.status == 400 and "not valid JSON" in (await response.json())["error"]["message"]
            too_big = {"model": MODEL, "prompt": "x" * (16 * 1024 * 1024 + 1)}  # past the body limit
            status, reply = await post(c, "/completions", too_big)
            assert status == 413 and "over the limit of 1048576 bytes" in reply["error"]["message"], reply

            client = openai_client(c)  # the SDK raises its own classes from these statuses
            with pytest.raises(openai.BadRequestError) as caught:
                await client.completions.create(model=MODEL, prompt="hi", max_tokens=-1)
            assert caught.value.body == {
                "message": "max_tokens must be > 0, got -1",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "invalid_argument",
            }
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
            good = await client.completions.create(
                model=MODEL, prompt="still serving", max_tokens=6, temperature=0, extra_body=IGNORE_EOS
            )
            assert good.usage is not None and good.usage.completion_tokens == 6

    asyncio.run(scenario())


def test_a_full_cluster_is_503_with_retry_after() -> None:
    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, config=node_config(staging_tokens=100), http=True) as c:
            decode = c.decode[0]
            async with insecure_channel(decode.address) as node_channel:  # occupy 50 of its 100 staging tokens
                await pb_grpc.DecodeStub(node_channel).PushKv(kv_messages(decode, "squatter", 50))
            prompt = list(range(1, 61))  # 60 tokens: no room left for its KV
            body = COMPLETION | {"prompt": prompt}
            async with aiohttp.ClientSession() as session, session.post(c.base_url + "/completions", json=body) as r:
                status, reply, retry_after = r.status, await r.json(), r.headers.get("Retry-After")
            assert status == 503, reply
            assert retry_after is not None and int(retry_after) > 0
            assert reply["error"]["type"] == "service_unavailable"
            assert reply["error"]["code"] == "resource_exhausted"
            assert "no room for" in reply["error"]["message"]
            client = openai_client(c)
            with pytest.raises(openai.InternalServerError):
                await client.completions.create(model=MODEL, prompt=prompt, max_tokens=4)
            # Streamed, the decode node refuses the KV after the prefill node streamed token 1: the status line is
            # sent by then, so the refusal arrives as an error event, which the SDK raises.
            stream = await client.completions.create(
                model=MODEL, prompt=prompt, max_tokens=4, stream=True, extra_body=IGNORE_EOS
            )  # without ignore_eos the first token may end it at the prefill node
            with pytest.raises(openai.APIError) as caught:
                async for _ in stream:
                    pass
            assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "resource_exhausted"

    asyncio.run(scenario())


def test_no_node_to_serve_is_503() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            await c.workers[0].stop(0)
            status, reply = await post(c, "/completions", COMPLETION)
            assert status == 503, reply
            assert reply["error"]["code"] == "unavailable"
            assert "no worker could take the request: colocated-0: UNAVAILABLE" in reply["error"]["message"], reply
            assert "127.0.0.1" not in reply["error"]["message"], reply  # the node's address stays in the router

    asyncio.run(scenario())
