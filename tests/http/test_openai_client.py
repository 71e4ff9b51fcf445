"""The official `openai` client against a running cluster, in both modes: completions and chat, streamed and
whole, text and token-id prompts, usage counts, stop strings; the text equals the gRPC front's for the same
greedy request."""

from __future__ import annotations

import asyncio

import pytest
from openai.types.chat import ChatCompletionMessageParam

from pdsim.core.topology import Mode
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.http.helpers import IGNORE_EOS, MODEL, openai_client
from tests.rpc_client import complete, sampling
from tests.waiting import eventually

PROMPT = "Prefill is compute-bound; decode is memory-bound."
# The tiny preset's chat template, rendered for one user message (byte-level tokenizer: one token per byte).
CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]
RENDERED_CHAT = "<|user|>\nHello\n<|assistant|>\n"
MAX_TOKENS = 12


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_openai_client_matches_the_grpc_front(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            client = openai_client(c)
            reference = await complete(stub, pb.GenerateRequest(text=PROMPT, sampling=sampling(MAX_TOKENS)))
            chat_reference = await complete(stub, pb.GenerateRequest(text=RENDERED_CHAT, sampling=sampling(MAX_TOKENS)))
            assert reference.usage is not None
            prompt_tokens = reference.usage.prompt_tokens
            usage = (prompt_tokens, MAX_TOKENS, prompt_tokens + MAX_TOKENS)

            models = await client.models.list()
            assert [m.id for m in models.data] == [MODEL]

            whole = await client.completions.create(
                model=MODEL, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0, extra_body=IGNORE_EOS
            )
            assert whole.object == "text_completion" and whole.model == MODEL
            assert whole.choices[0].text == reference.text
            assert whole.choices[0].finish_reason == "length"
            assert whole.usage is not None
            assert (whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens) == usage

            stream = await client.completions.create(
                model=MODEL, prompt=list(PROMPT.encode()), max_tokens=MAX_TOKENS, stream=True,
                stream_options={"include_usage": True}, temperature=0, extra_body=IGNORE_EOS,
            )  # fmt: skip
            chunks = [chunk async for chunk in stream]
            assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == reference.text
            assert len({ch.id for ch in chunks}) == 1
            assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
            *streamed, last = chunks
            assert last.choices == [] and last.usage is not None
            assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == usage
            assert all(ch.usage is None for ch in streamed)

            chat = await client.chat.completions.create(
                model=MODEL, messages=CHAT, max_tokens=MAX_TOKENS, temperature=0, extra_body=IGNORE_EOS
            )
            assert chat.object == "chat.completion"
            assert chat.choices[0].message.role == "assistant"
            assert chat.choices[0].message.content == chat_reference.text
            assert chat.usage is not None
            assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (len(RENDERED_CHAT), MAX_TOKENS)

            chat_stream = await client.chat.completions.create(
                model=MODEL,
                messages=CHAT,
                max_completion_tokens=MAX_TOKENS,
                stream=True,
                temperature=0,
                extra_body=IGNORE_EOS,
            )
            chat_chunks = [chunk async for chunk in chat_stream]
            assert chat_chunks[0].choices[0].delta.role == "assistant"
            assert "".join(ch.choices[0].delta.content or "" for ch in chat_chunks) == chat_reference.text
            assert chat_chunks[-1].choices[0].finish_reason == "length"
            assert all(ch.usage is None for ch in chat_chunks), "no usage chunk unless asked for"

            await eventually(lambda: all(n.load().kv_bytes_held == 0 for n in c.nodes), what="all KV freed")

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_a_stop_string_ends_the_text_before_it_and_the_request_on_the_nodes(mode: Mode) -> None:
    max_tokens = 40

    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c:
            client = openai_client(c)
            full = await client.completions.create(
                model=MODEL, prompt=PROMPT, max_tokens=max_tokens, temperature=0, extra_body=IGNORE_EOS
            )
            text = full.choices[0].text
            stop = text[8:10]  # from the first quarter, so the request ends well before max_tokens
            expected = text[: text.index(stop)]
            stopped = await client.completions.create(
                model=MODEL,
                prompt=PROMPT,
                max_tokens=max_tokens,
                stop=[stop, "never appears"],
                temperature=0,
                extra_body=IGNORE_EOS,
            )
            assert stopped.choices[0].text == expected
            assert stopped.choices[0].finish_reason == "stop"
            assert stopped.usage is not None and stopped.usage.completion_tokens < max_tokens
            stream = await client.completions.create(
                model=MODEL, prompt=PROMPT, max_tokens=max_tokens, stop=stop, stream=True,
                stream_options={"include_usage": True}, temperature=0, extra_body=IGNORE_EOS,
            )  # fmt: skip
            chunks = [chunk async for chunk in stream]
            assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == expected
            assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
            assert chunks[-1].usage is not None
            assert chunks[-1].usage.completion_tokens == stopped.usage.completion_tokens
            await eventually(
                lambda: all(n.load().kv_bytes_held == 0 and n.load().running == 0 for n in c.nodes),
                what="the stopped requests freed their KV",
            )

    asyncio.run(scenario())


def test_a_seed_makes_sampling_repeatable() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            client = openai_client(c)
            seeded = {"model": MODEL, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 1.0, "seed": 7}
            first = await client.completions.create(**seeded)  # type: ignore[call-overload]
            stream = await client.completions.create(stream=True, **seeded)  # type: ignore[call-overload]
            again = "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])
            assert first.choices[0].text == again

    asyncio.run(scenario())
