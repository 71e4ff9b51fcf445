"""OpenAI logprobs on the HTTP front, in both modes: completions' `logprobs: k` and chat's `logprobs` +
`top_logprobs`, streamed and whole, equal to a direct log-softmax of the model's logits (greedy, fp32)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import grpc
import pytest
import torch
from transformers import AutoModelForCausalLM

from pdsim.core.topology import Mode
from pdsim.models.presets import ensure_preset
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import Cluster, cluster
from tests.http.helpers import MODEL, post

PROMPT = list(range(40, 60))
STEPS = 6
BODY = {"model": MODEL, "prompt": PROMPT, "temperature": 0, "max_tokens": STEPS, "ignore_eos": True}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": STEPS}


@pytest.fixture(scope="module")
def reference() -> tuple[list[int], list[torch.Tensor]]:
    """Greedy tokens and each step's log-softmax (suppressed tokens -inf) straight from transformers."""
    model = AutoModelForCausalLM.from_pretrained(ensure_preset("tiny"), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    suppressed = list(model.generation_config.suppress_tokens or [])
    ids, steps = list(PROMPT), []
    with torch.no_grad():
        for _ in range(STEPS):
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            logp[suppressed] = float("-inf")
            steps.append(logp)
            ids.append(int(logp.argmax()))
    return ids[len(PROMPT) :], steps


async def _events(c: Cluster, path: str, body: dict[str, Any]) -> list[Any]:
    async with aiohttp.ClientSession() as session, session.post(c.base_url + path, json=body) as response:
        assert response.status == 200, await response.text()
        raw = (await response.read()).decode()
    payloads = [line.removeprefix("data: ") for line in raw.split("\n\n") if line]
    return [json.loads(p) for p in payloads if p != "[DONE]"]


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_logprobs_match_the_model(mode: Mode, reference: tuple[list[int], list[torch.Tensor]]) -> None:
    tokens, steps = reference

    async def scenario() -> None:
        async with cluster(mode, workers=1, http=True) as c:
            status, whole = await post(c, "/completions", BODY | {"logprobs": 3})
            assert status == 200, whole
            lp = whole["choices"][0]["logprobs"]
            assert len(lp["token_logprobs"]) == STEPS and len(lp["tokens"]) == STEPS
            for i, (value, top) in enumerate(zip(lp["token_logprobs"], lp["top_logprobs"], strict=True)):
                assert abs(value - steps[i][tokens[i]].item()) < 1e-3
                assert len(top) == 3 and list(top.values()) == sorted(top.values(), reverse=True)
                assert max(top.values()) == pytest.approx(value)  # greedy: the sampled token is the likeliest
                want = torch.topk(steps[i], 3).values.tolist()
                assert list(top.values()) == pytest.approx(want, abs=1e-3)
            assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"])

            # logprobs 0: the sampled token's logprob, and it alone in top_logprobs (as OpenAI and vLLM; not null).
            status, zero = await post(c, "/completions", BODY | {"logprobs": 0})
            zero_lp = zero["choices"][0]["logprobs"]
            assert zero_lp["token_logprobs"] == pytest.approx(lp["token_logprobs"])
            assert zero_lp["top_logprobs"] == [
                {t: v} for t, v in zip(zero_lp["tokens"], zero_lp["token_logprobs"], strict=True)
            ]
            status, plain = await post(c, "/completions", BODY)
            assert plain["choices"][0]["logprobs"] is None

            chunks = await _events(c, "/completions", BODY | {"logprobs": 3, "stream": True})
            streamed = [v for ch in chunks for v in ch["choices"][0]["logprobs"]["token_logprobs"]]
            assert streamed == pytest.approx(lp["token_logprobs"])

            status, chat = await post(c, "/chat/completions", CHAT | {"logprobs": True, "top_logprobs": 2})
            assert status == 200, chat
            content = chat["choices"][0]["logprobs"]["content"]
            assert 0 < len(content) <= STEPS
            for entry in content:
                assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
                assert entry["bytes"] == list(entry["token"].encode())
                assert len(entry["top_logprobs"]) == 2 and entry["top_logprobs"][0]["logprob"] == entry["logprob"]
            chat_chunks = await _events(c, "/chat/completions", CHAT | {"logprobs": True, "stream": True})
            got = [
                e
                for ch in chat_chunks
                if ch["choices"]
                for e in (ch["choices"][0]["logprobs"] or {}).get("content", [])
            ]
            assert [e["logprob"] for e in got] == pytest.approx([e["logprob"] for e in content])
            assert all(e["top_logprobs"] == [] for e in got)

            # The gRPC API: SamplingParams.logprobs in, one GenerateResponse.logprobs entry per token out.
            async with insecure_channel(c.address) as channel:
                stub = pb_grpc.RouterStub(channel)
                sampling = pb.SamplingParams(max_tokens=STEPS, ignore_eos=True, logprobs=2)
                request = pb.GenerateRequest(token_ids=pb.TokenIds(ids=PROMPT), sampling=sampling)
                entries = [e async for r in stub.Generate(request) for e in r.logprobs]
                assert [e.logprob for e in entries] == pytest.approx(lp["token_logprobs"], abs=1e-5)
                assert [(e.top_ids[0], len(e.top_ids)) for e in entries] == [(t, 2) for t in tokens]
                sampling.logprobs = 21
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    _ = [r async for r in stub.Generate(pb.GenerateRequest(text="x", sampling=sampling))]
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert "logprobs must be in [0, 20]" in str(refused.value.details())

    asyncio.run(scenario())
