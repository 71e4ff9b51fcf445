"""Shared by the HTTP API tests: an `openai` client on a test cluster, raw requests, and /metrics samples."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai

from tests.cluster import Cluster
from tests.scrape import scrape, value

MODEL = "tiny"  # the served model name: the preset's directory name
IGNORE_EOS = {"ignore_eos": True}  # pdsim's (and vLLM's) extension, through the SDK's extra_body


def openai_client(c: Cluster) -> openai.AsyncOpenAI:
    # No retries: a test that provokes 429 or 503 must see it once, not three times.
    return openai.AsyncOpenAI(base_url=c.base_url, api_key="unused", max_retries=0)


async def post(c: Cluster, path: str, body: Any) -> tuple[int, Any]:
    """(status, JSON body) of a raw POST; `body` is sent as JSON unless it is bytes."""
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with session.post(c.base_url + path, **kwargs) as response:
            return response.status, await response.json()


async def metric(c: Cluster, name: str, **labels: str) -> float:
    """The sum of the router's samples named `name` whose labels include `labels`, as /metrics serves them."""
    return value(scrape(c.router.metrics_endpoint.address), name, **labels)
