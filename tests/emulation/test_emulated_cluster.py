"""An emulated cluster runs the real router, KV protocol and schedulers: the same text in both modes, the KV's
real size reported, and the modeled link's time spent on the push."""

from __future__ import annotations

import asyncio

from pdsim.core.emulation.links import load_link
from pdsim.core.topology import Mode
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.rpc_client import Completion, complete, sampling

PROMPTS = [list(range(1, 200)), list(range(5, 1500)), [7] * 60]
CONFIG = NodeConfig(
    model=ModelSpec("llama-3.1-8b", "emulated:h100-sxm", "bfloat16", max_context=4096),
    emulation=EmulationConfig(link="ethernet-10g", dilation=2.0),
)


async def _run(mode: Mode) -> tuple[list[Completion], float]:
    async with cluster(mode, workers=1, config=CONFIG) as c:
        async with insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            requests = [
                pb.GenerateRequest(token_ids=pb.TokenIds(ids=p), sampling=sampling(12, seed=i))
                for i, p in enumerate(PROMPTS)
            ]
            completions = await asyncio.gather(*(complete(stub, r) for r in requests))
        sent = 0.0
        for node in c.prefill:
            sent += (
                node.metrics_endpoint.registry.get_sample_value(
                    "pdsim_kv_transfer_bytes_total",
                    {
                        "mode": "disaggregated",
                        "role": "prefill",
                        "instance": node.address,
                        "direction": "sent",
                    },
                )
                or 0.0
            )
        return list(completions), sent


def test_both_modes_stream_the_same_text_and_the_push_carries_the_caches_size() -> None:
    colocated, _ = asyncio.run(_run(Mode.COLOCATED))
    disaggregated, sent = asyncio.run(_run(Mode.DISAGGREGATED))
    assert [c.token_ids for c in colocated] == [d.token_ids for d in disaggregated]
    assert all(len(c.token_ids) == 12 for c in colocated)
    per_token = 2 * 32 * 8 * 128 * 2  # Llama-3.1-8B's KV in bf16: 128 KiB a token
    assert sent == sum(len(p) for p in PROMPTS) * per_token


def test_a_push_takes_the_links_time() -> None:
    link = load_link("ethernet-10g")
    prompt = list(range(1, 2001))  # 262 MB of KV: 0.21 s on 10 Gb Ethernet (0.42 s of wall clock at dilation 2)

    async def scenario() -> float:
        async with cluster(Mode.DISAGGREGATED, config=CONFIG) as c:
            async with insecure_channel(c.address) as channel:
                stub = pb_grpc.RouterStub(channel)
                await complete(stub, pb.GenerateRequest(token_ids=pb.TokenIds(ids=prompt), sampling=sampling(2)))
            histogram = c.prefill[0].metrics_endpoint.registry
            return (
                histogram.get_sample_value(
                    "pdsim_kv_transfer_seconds_sum",
                    {
                        "mode": "disaggregated",
                        "role": "prefill",
                        "instance": c.prefill[0].address,
                        "direction": "sent",
                    },
                )
                or 0.0
            )

    recorded = asyncio.run(scenario())  # in emulated seconds: the wall clock's / the dilation
    modeled = link.transfer_seconds(len(prompt) * 2 * 32 * 8 * 128 * 2)
    assert modeled <= recorded < modeled + 0.25
