"""`pdsim loadgen --api openai` replays the same workload through the OpenAI HTTP API as `--api grpc` does
through pdsim's gRPC API: the same requests, the same token counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from apps.loadgen_cli import measure
from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.runner import Api, RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode
from tests.cluster import cluster


def _records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / "requests.jsonl").read_text().splitlines()]


def test_openai_api_gives_the_grpc_counts(tmp_path: Path) -> None:
    spec = WorkloadSpec(mix="chat", arrivals=Arrivals(ArrivalKind.CONSTANT, rate=8.0), count=12, seed=5)
    limits = RunLimits(duration=5.0, warmup=1, request_timeout=60, drain_timeout=30)

    async def scenario() -> dict[Api, dict[str, Any]]:
        async with cluster(Mode.COLOCATED, workers=2, http=True) as c:
            grpc = await measure(c.address, spec, limits, tmp_path / "grpc")
            url = c.base_url.removesuffix("/v1")
            openai = await measure(url, spec, limits, tmp_path / "openai", api=Api.OPENAI)
            return {Api.GRPC: grpc, Api.OPENAI: openai}

    summaries = asyncio.run(scenario())
    for api, summary in summaries.items():
        assert summary["completed"] == summary["sent"] == 12 and summary["failed"] == 0, (api, summary["errors"])
    assert summaries[Api.OPENAI]["workload"]["api"] == "openai"
    grpc, openai = _records(tmp_path / "grpc"), _records(tmp_path / "openai")
    shape = [(r["index"], r["input_tokens"], r["output_tokens_requested"], sum(r["chunk_tokens"])) for r in grpc]
    assert [
        (r["index"], r["input_tokens"], r["output_tokens_requested"], sum(r["chunk_tokens"])) for r in openai
    ] == shape
    assert all(r["chunk_tokens"] == [1] * len(r["chunk_tokens"]) for r in openai)  # one token per event
