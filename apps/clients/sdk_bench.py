"""A constant-rate streaming benchmark written with the `openai` SDK alone, as its users would write one.

Runs in the SDK's own virtual environment (stdlib and `openai` only, nothing of pdsim): chat completions,
streamed, with `stream_options.include_usage`; prints one JSON object of medians and counts. Every delta with
content is one token arrival; the output count is the server's usage.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from dataclasses import dataclass

from openai import AsyncOpenAI


@dataclass(frozen=True, slots=True)
class _Result:
    ttft: float
    itls: list[float]
    tpot: float
    tokens: int
    chunks: int


async def _one(client: AsyncOpenAI, model: str, prompt: str, max_tokens: int) -> _Result:
    start = time.perf_counter()
    arrivals: list[float] = []
    usage = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    itls = [b - a for a, b in itertools.pairwise(arrivals)]
    tpot = (arrivals[-1] - arrivals[0]) / (usage - 1) if usage > 1 and arrivals else 0.0
    return _Result(arrivals[0] - start, itls, tpot, usage, len(arrivals))


async def _run(args: argparse.Namespace) -> dict[str, object]:
    client = AsyncOpenAI(base_url=args.base_url, api_key="unused", max_retries=0)
    prompt = ("pdsim " * args.input_words).strip()
    tasks = []
    start = time.perf_counter()
    for i in range(args.count):
        delay = start + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(client, args.model, prompt, args.output_tokens)))
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=args.timeout)
    ok = [r for r in done if isinstance(r, _Result)]
    return {
        "completed": len(ok),
        "failed": len(done) - len(ok),
        "ttft_ms": 1000 * statistics.median(r.ttft for r in ok),
        "itl_ms": 1000 * statistics.median(x for r in ok for x in r.itls),
        "tpot_ms": 1000 * statistics.median(r.tpot for r in ok),
        "output_tokens": sum(r.tokens for r in ok),
        "chunks": sum(r.chunks for r in ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--input-words", type=int, default=30)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    print(json.dumps(asyncio.run(_run(parser.parse_args()))))


if __name__ == "__main__":
    main()
