"""Greedy tokens are identical in model.generate, colocated mode and disaggregated mode (fp32, tiny preset),
for concurrent requests that join and leave running batches mid-flight."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pdsim.core.topology import Mode
from pdsim.engine.engine import StepStats
from pdsim.models.presets import ensure_preset
from pdsim.node.server import NodeServer
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster
from tests.rpc_client import complete, sampling
from tests.waiting import eventually

PROMPT_LENS = [3, 17, 40, 5, 90, 64, 9, 33, 120, 12]
MAX_TOKENS = [12, 30, 5, 40, 8, 20, 25, 3, 15, 35]
TEXT = "Prefill is compute-bound; decode is memory-bound."


def _prompts() -> list[list[int]]:
    generator = torch.Generator().manual_seed(42)
    return [torch.randint(0, 256, (n,), generator=generator).tolist() for n in PROMPT_LENS]


@pytest.fixture(scope="module")
def reference() -> tuple[list[list[int]], list[int]]:
    """(a): each prompt alone through transformers' own generate, with its default attention."""
    path = ensure_preset("tiny")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()  # type: ignore[no-untyped-call]

    def generate(ids: list[int], n: int) -> list[int]:
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None)
        return out[0, len(ids) :].tolist()  # type: ignore[no-any-return]

    text_ids = AutoTokenizer.from_pretrained(path)(TEXT).input_ids
    return [generate(p, n) for p, n in zip(_prompts(), MAX_TOKENS, strict=True)], generate(text_ids, 24)


class BatchLog:
    """Which requests were running after each step that ran decodes (decode or mixed), per engine (recorded on the
    engine thread). Mixed steps count: under chunked scheduling a prompt's last chunk runs beside the decodes, so
    that is the step in which it joins them."""

    def __init__(self, nodes: Sequence[NodeServer]) -> None:
        self.steps: dict[str, list[frozenset[str]]] = {}
        for node in nodes:
            engine = node.built.engine
            running = getattr(engine.scheduler, "running", None)
            if running is None:
                continue
            log = self.steps.setdefault(node.address, [])

            def record(stats: StepStats, log: list[frozenset[str]] = log, running: object = running) -> None:
                if stats.decode_tokens > 0:
                    log.append(frozenset(r.request_id for r in running.requests))  # type: ignore[attr-defined]

            engine.add_observer(record)

    def saw_join_and_leave_mid_flight(self) -> tuple[bool, bool]:
        joined = left = False
        for log in self.steps.values():
            for before, after in itertools.pairwise(log):
                if before & after:
                    joined |= bool(after - before)
                    left |= bool(before - after)
        return joined, left


async def _run(mode: Mode, decode: int = 1) -> tuple[list[list[int]], list[int], tuple[bool, bool], list[int]]:
    async with cluster(mode, workers=2, prefill=1, decode=decode) as c:
        log = BatchLog(c.nodes)
        async with insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)

            async def one(i: int, prompt: list[int]) -> list[int]:
                await asyncio.sleep(0.03 * i)  # staggered: later requests join batches already running
                request = pb.GenerateRequest(token_ids=pb.TokenIds(ids=prompt), sampling=sampling(MAX_TOKENS[i]))
                return (await complete(stub, request)).token_ids

            results = await asyncio.gather(*(one(i, p) for i, p in enumerate(_prompts())))
            text = await complete(stub, pb.GenerateRequest(text=TEXT, sampling=sampling(24)))
            await eventually(lambda: all(n.load().kv_bytes_held == 0 for n in c.nodes), what="all KV freed")
        served = [len(log.steps.get(n.address, [])) for n in (c.workers if mode is Mode.COLOCATED else c.decode)]
        return list(results), text.token_ids, log.saw_join_and_leave_mid_flight(), served


@pytest.mark.parametrize(("mode", "decode"), [(Mode.COLOCATED, 0), (Mode.DISAGGREGATED, 1), (Mode.DISAGGREGATED, 2)])
def test_tokens_match_model_generate(mode: Mode, decode: int, reference: tuple[list[list[int]], list[int]]) -> None:
    tokens, text_tokens, (joined, left), served = asyncio.run(_run(mode, decode))
    expected, expected_text = reference
    for i, (got, want) in enumerate(zip(tokens, expected, strict=True)):
        assert got == want, f"request {i} (prompt {PROMPT_LENS[i]}, max_tokens {MAX_TOKENS[i]})"
    assert text_tokens == expected_text
    assert joined, "no request joined a running batch mid-flight"
    assert left, "no request left a running batch while others went on"
    assert all(steps > 0 for steps in served), f"a node decoded nothing: decode steps per node {served}"
