"""The OpenAI HTTP client: send one planned request to any OpenAI-compatible server's /v1/completions,
streamed, and time every streamed event.

Prompts go as token ids, so the server runs exactly the planned input lengths; the output count comes from the
server's usage chunk, so a server that packs several tokens into one event is still counted exactly. Knows
nothing of pdsim's deployment modes (and imports no torch).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadgen.clock import RunClock
from loadgen.records import RequestRecord
from loadgen.workload import Plan, PlannedRequest


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What the plan needs from the server: the model's name and context length."""

    model_name: str
    max_context: int
    time_dilation: float = 1.0  # an emulated cluster's (pdsim's /v1/models says it)


def base_url(target: str) -> str:
    """`http://host:port` or `http://host:port/v1` (a bare `host:port` gets http://) -> the /v1 URL."""
    url = target if "://" in target else f"http://{target}"
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


async def fetch_served_model(session: aiohttp.ClientSession, url: str, timeout: float = 10.0) -> ServedModel:
    async with session.get(url + "/models", timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        if response.status != 200:
            raise ConnectionError(f"GET {url}/models answered {response.status}: {await response.text()}")
        card = (await response.json())["data"][0]
    context = card.get("max_model_len")
    if not isinstance(context, int):
        raise ConnectionError(f"{url}/models does not give the model's max_model_len (got {context!r})")
    dilation = card.get("pdsim_time_dilation", 1.0)
    return ServedModel(str(card["id"]), context, float(dilation) if isinstance(dilation, int | float) else 1.0)


class OpenAiClient:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, model: str, plan: Plan, clock: RunClock, request_timeout: float
    ) -> None:
        """`request_timeout`: each request's, in wall seconds. An HTTP stream carries no token stamps: on an
        emulated cluster its times are when tokens reached this client, in emulated seconds."""
        self._session = session
        self._url = url + "/completions"
        self._model = model
        self._plan = plan
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)

    def _now(self) -> float:
        return self._clock.now()

    def request(self, planned: PlannedRequest) -> dict[str, Any]:
        """The JSON body: greedy, as the gRPC client's requests are."""
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": list(self._plan.prompt(planned)),
            "max_tokens": planned.output_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if planned.ignore_eos:
            body["ignore_eos"] = True
        if planned.request_class:
            body["request_class"] = planned.request_class  # pdsim's SLO class; other servers may refuse it
        return body

    async def send(self, body: dict[str, Any], record: RequestRecord) -> RequestRecord:
        """Send and stream into `record`, as `LoadClient.send` does; the code of an error is its HTTP status."""
        record.sent = self._now()
        try:
            async with self._session.post(self._url, json=body, timeout=self._timeout) as response:
                if response.status != 200:
                    record.status, record.code = "error", f"HTTP_{response.status}"
                    record.error = (await response.text())[:500]
                else:
                    await self._read_events(response, record)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            record.status, record.code, record.error = "error", type(error).__name__, str(error)
        except asyncio.CancelledError:
            record.status, record.error = "timeout", "still running when the run's drain time ended"
            record.ended = self._now()
            raise
        record.ended = self._now()
        return record

    async def _read_events(self, response: aiohttp.ClientResponse, record: RequestRecord) -> None:
        async for raw in response.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                record.status, record.code = "error", str(event["error"].get("code") or "error").upper()
                record.error = str(event["error"].get("message", ""))
                return
            choices = event.get("choices") or []
            if choices and choices[0].get("text"):  # a chunk with only a finish reason is no token arrival
                record.chunk_times.append(self._now())
                record.chunk_tokens.append(1)
            usage = event.get("usage")
            if usage and record.chunk_tokens:
                # The server's count is exact; events may have carried several tokens (or none, for text held back).
                record.chunk_tokens[-1] += int(usage["completion_tokens"]) - sum(record.chunk_tokens)
