"""The stream shape load tools parse (one token per event, a usage chunk, `[DONE]`), vLLM's sampling fields
changing the output as vLLM specifies, `/v1/models/{id}`, and `/metrics` on the HTTP port."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from pdsim.core.topology import Mode
from tests.cluster import Cluster, cluster
from tests.http.helpers import MODEL, post

PROMPT = "Prefill is compute-bound; decode is memory-bound."
GREEDY = {"model": MODEL, "prompt": PROMPT, "temperature": 0}


async def _events(c: Cluster, body: dict[str, Any]) -> list[Any]:
    """Every `data:` payload of a streamed request, `[DONE]` as the string."""
    async with aiohttp.ClientSession() as session, session.post(c.base_url + "/completions", json=body) as response:
        assert response.status == 200, await response.text()
        raw = (await response.read()).decode()
    payloads = [line.removeprefix("data: ") for line in raw.split("\n\n") if line]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


def test_stream_shape_and_vllm_fields() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, http=True) as c:
            body = GREEDY | {"max_tokens": 24, "ignore_eos": True, "stream": True}
            events = await _events(c, body | {"stream_options": {"include_usage": True}})
            assert events[-1] == "[DONE]"
            *chunks, usage = events[:-1]
            assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 24
            texts = [ch["choices"][0]["text"] for ch in chunks]
            assert len(texts) == 24 and all(len(t) == 1 and t.isprintable() for t in texts)  # one token per event
            assert chunks[-1]["choices"][0]["finish_reason"] == "length"
            text = "".join(texts)

            status, whole = await post(c, "/completions", GREEDY | {"max_tokens": 24, "ignore_eos": True})
            assert status == 200 and whole["choices"][0]["text"] == text

            # stop_token_ids: the stream ends at that token, finish reason stop, its text left out.
            stop_id = ord(text[5])
            first = text.index(text[5])
            by_id = GREEDY | {"max_tokens": 24, "ignore_eos": True, "stop_token_ids": [stop_id]}
            status, stopped = await post(c, "/completions", by_id)
            choice = stopped["choices"][0]
            assert (choice["text"], choice["finish_reason"]) == (text[:first], "stop")
            assert stopped["usage"]["completion_tokens"] == first + 1
            status, kept = await post(c, "/completions", by_id | {"include_stop_str_in_output": True})
            assert kept["choices"][0]["text"] == text[: first + 1]

            # A stop string matching the first character ends at once; min_tokens holds it off.
            stop = {"max_tokens": 24, "ignore_eos": True, "stop": text[0]}
            status, immediate = await post(c, "/completions", GREEDY | stop)
            assert (immediate["choices"][0]["text"], immediate["usage"]["completion_tokens"]) == ("", 1)
            status, held = await post(c, "/completions", GREEDY | stop | {"min_tokens": 6})
            assert held["usage"]["completion_tokens"] >= 6 and held["choices"][0]["text"].startswith(text[:6])
            status, included = await post(c, "/completions", GREEDY | stop | {"include_stop_str_in_output": True})
            assert included["choices"][0]["text"] == text[0]

            # min_p = 1 keeps only the likeliest token: sampling at any temperature becomes greedy.
            sampled = {"max_tokens": 24, "ignore_eos": True, "temperature": 5.0, "seed": 1}
            status, hot = await post(c, "/completions", GREEDY | sampled)
            status, min_p = await post(c, "/completions", GREEDY | sampled | {"min_p": 1.0})
            assert min_p["choices"][0]["text"] == text != hot["choices"][0]["text"]

            async with aiohttp.ClientSession() as session:
                async with session.get(f"{c.base_url}/models/{MODEL}") as response:
                    card = await response.json()
                    assert response.status == 200 and card["id"] == MODEL and card["object"] == "model"
                async with session.get(f"{c.base_url}/models/gpt-4") as response:
                    assert response.status == 404 and (await response.json())["error"]["code"] == "model_not_found"
                async with session.get(c.base_url.removesuffix("/v1") + "/metrics") as response:
                    page = await response.text()
                    assert response.status == 200 and "pdsim_generation_tokens_total" in page

    asyncio.run(scenario())
