"""Every process's /metrics, checked against what the test sent: exact counts, bytes and tokens."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pdsim.core.slo import Slo, SloTable
from pdsim.core.topology import Mode
from pdsim.metrics import OUTCOMES
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.rpc_client import sampling
from tests.scrape import Sample, scrape, value
from tests.waiting import eventually

PROMPTS = [5, 9, 13, 17]
MAX_TOKENS = 6
# Everything meets the default SLO; nothing can meet "strict".
SLOS = SloTable(default=Slo(ttft=60.0, tpot=60.0), classes={"strict": Slo(ttft=1e-9, tpot=1e-9)})


async def _chunks(stub: pb_grpc.RouterStub, prompt_len: int, request_class: str) -> int:
    """Send one greedy request; return how many streamed messages carried tokens."""
    request = pb.GenerateRequest(
        token_ids=pb.TokenIds(ids=[7] * prompt_len), sampling=sampling(MAX_TOKENS), request_class=request_class
    )
    return sum([1 async for response in stub.Generate(request) if response.token_ids])


def _labelled(samples: list[Sample], mode: str, role: str, instance: str) -> None:
    pdsim = [s for s in samples if s.name.startswith("pdsim_")]
    assert pdsim, "no pdsim_ series"
    for sample in pdsim:
        assert {"mode": mode, "role": role, "instance": instance}.items() <= sample.labels.items(), sample


def test_disaggregated_metrics_count_exactly_what_was_sent() -> None:
    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, slos=SLOS) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            classes = ["chat", "chat", "strict", "strict"]
            chunks = await asyncio.gather(*(_chunks(stub, n, k) for n, k in zip(PROMPTS, classes, strict=True)))
            with pytest.raises(grpc.aio.AioRpcError):
                await _chunks(stub, 0, "chat")  # an empty prompt: refused, counted as invalid_argument
            with pytest.raises(grpc.aio.AioRpcError):
                await anext(aiter(stub.Generate(pb.GenerateRequest(sampling=sampling(2)))))  # no prompt at all

            prefill, decode = c.prefill[0], c.decode[0]
            await eventually(lambda: decode.load().kv_bytes_held == 0, what="decode KV freed")
            router = scrape(c.router.metrics_endpoint.address)
            on_prefill = scrape(prefill.metrics_endpoint.address)
            on_decode = scrape(decode.metrics_endpoint.address)

            sent, tokens = len(PROMPTS), len(PROMPTS) * MAX_TOKENS
            assert value(router, "pdsim_requests_total", outcome="ok") == sent
            assert value(router, "pdsim_requests_total", outcome="invalid_argument", slo_class="default") == 2
            # Every outcome's series exists from the start (rate() misses a series' first increment).
            assert len({s.labels["outcome"] for s in router if s.name == "pdsim_requests_total"}) == len(OUTCOMES)
            for name in ("time_to_first_token", "e2e_request_latency", "request_time_per_output_token"):
                assert value(router, f"pdsim_{name}_seconds_count") == sent, name
            assert value(router, "pdsim_inter_token_latency_seconds_count") == sum(n - 1 for n in chunks)
            assert value(router, "pdsim_requests_slo_met_total", slo_class="default") == 2
            assert value(router, "pdsim_requests_slo_met_total", slo_class="strict") == 0
            assert value(router, "pdsim_requests_total", outcome="ok", slo_class="strict") == 2
            assert value(router, "pdsim_prompt_tokens_total") == sum(PROMPTS)
            assert value(router, "pdsim_generation_tokens_total") == tokens
            assert value(router, "pdsim_num_requests_running") == 0

            kv_bytes = sum(PROMPTS) * prefill.built.info.layout.bytes_per_token
            assert value(on_prefill, "pdsim_kv_transfer_bytes_total", direction="sent") == kv_bytes
            assert value(on_decode, "pdsim_kv_transfer_bytes_total", direction="received") == kv_bytes
            assert value(on_prefill, "pdsim_kv_transfer_seconds_count", direction="sent") == sent
            assert value(on_decode, "pdsim_kv_transfer_seconds_count", direction="received") == sent
            assert value(on_prefill, "pdsim_prompt_tokens_total") == sum(PROMPTS)
            assert value(on_prefill, "pdsim_generation_tokens_total") == sent  # each first token
            assert value(on_decode, "pdsim_generation_tokens_total") == tokens - sent
            assert value(on_decode, "pdsim_batch_size_sum", phase="decode") == tokens - sent  # a row per token
            assert value(on_prefill, "pdsim_batch_size_sum", phase="prefill") == sent
            for node in (on_prefill, on_decode):
                assert value(node, "pdsim_request_queue_time_seconds_count") == sent
            assert value(on_prefill, "pdsim_busy_seconds_total", phase="prefill") > 0
            assert value(on_prefill, "pdsim_step_tokens_total", kind="prefill") == sum(PROMPTS)
            assert value(on_prefill, "pdsim_step_tokens_total", kind="decode") == 0
            assert value(on_decode, "pdsim_step_tokens_total", kind="decode") == tokens - sent
            assert value(on_decode, "pdsim_step_tokens_total", kind="prefill") == 0
            assert value(on_prefill, "pdsim_step_seconds_count", phase="decode") == 0
            assert value(on_decode, "pdsim_kv_held_bytes") == 0
            assert value(on_decode, "pdsim_kv_capacity_bytes") > 0
            assert value(on_decode, "pdsim_num_requests_running") == 0

            _labelled(router, "disaggregated", "router", c.router.address)
            _labelled(on_prefill, "disaggregated", "prefill", prefill.address)
            _labelled(on_decode, "disaggregated", "decode", decode.address)

    asyncio.run(scenario())


def test_colocated_workers_in_one_process_keep_their_own_series_and_cancels_are_counted() -> None:
    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=2) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            await asyncio.gather(*(_chunks(stub, n, "") for n in PROMPTS))
            workers = [scrape(w.metrics_endpoint.address) for w in c.workers]
            for worker, samples in zip(c.workers, workers, strict=True):
                _labelled(samples, "colocated", "colocated", worker.address)
                assert value(samples, "pdsim_step_seconds_count", phase="prefill") >= 1  # round-robin: both served
            assert sum(value(w, "pdsim_generation_tokens_total") for w in workers) == len(PROMPTS) * MAX_TOKENS
            assert sum(value(w, "pdsim_prompt_tokens_total") for w in workers) == sum(PROMPTS)
            # Every prompt token computed once (packed, no padding); every token after the first is a decode row.
            assert sum(value(w, "pdsim_step_tokens_total", kind="prefill") for w in workers) == sum(PROMPTS)
            decoded = sum(value(w, "pdsim_step_tokens_total", kind="decode") for w in workers)
            assert decoded == len(PROMPTS) * (MAX_TOKENS - 1)

            # A client that leaves mid-stream is a cancelled request, not a completed one.
            long = pb.GenerateRequest(token_ids=pb.TokenIds(ids=[3, 4]), sampling=sampling(500))
            call = stub.Generate(long)
            await anext(aiter(call))
            call.cancel()
            router = c.router.metrics_endpoint.address
            await eventually(lambda: value(scrape(router), "pdsim_requests_total", outcome="cancelled") == 1)
            await eventually(lambda: value(scrape(router), "pdsim_num_requests_running") == 0)
            await eventually(lambda: all(w.load().kv_bytes_held == 0 for w in c.workers), what="KV freed")
            assert value(scrape(router), "pdsim_requests_total", outcome="ok") == len(PROMPTS)
            _labelled(scrape(router), "colocated", "router", c.router.address)
            # Colocated workers move no KV: no transfer series to clutter the dashboard.
            assert not [s for w in workers for s in w if s.name.startswith("pdsim_kv_transfer")]

    asyncio.run(scenario())
