"""Packed and chunked prefill give exactly `model.generate`'s greedy tokens (tiny preset, fp32), for every
colocated policy and chunk size, with requests of very different lengths joining and leaving mid-flight.

The scheduler and the real model runner are driven step by step (no engine thread), so each test knows
exactly what every step ran.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pytest
import torch
from transformers import AutoModelForCausalLM

from pdsim.core.requests import SamplingParams
from pdsim.engine.batch import Batch
from pdsim.engine.build import build_runner, load_engine_model
from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.engine.model_runner import HfModelRunner
from pdsim.engine.prefill_scheduler import PrefillScheduler
from pdsim.engine.request import EngineEvent, Phase, PrefillOutput, Request, TokenOutput
from pdsim.engine.schedulers import ColocatedScheduler
from pdsim.engine.step import DecodeRow, PrefillRow, SamplingRow, StepInput
from pdsim.models.presets import ensure_preset
from pdsim.models.spec import ModelSpec

PROMPT_LENS = [3, 17, 150, 5, 90, 64, 9, 33, 120, 12]
MAX_TOKENS = [12, 30, 5, 40, 8, 20, 25, 3, 15, 35]
ARRIVAL_STEP = [0, 0, 0, 3, 6, 10, 15, 21, 28, 36]  # later requests arrive while others are running
SLOTS = 4  # fewer than the requests: prompts queue for slots that decodes free as they finish
SPEC = ModelSpec("tiny", dtype="float32")
GREEDY = SamplingRow(SamplingParams(), 0, 0)


def _prompts() -> list[list[int]]:
    generator = torch.Generator().manual_seed(7)
    return [torch.randint(0, 256, (n,), generator=generator).tolist() for n in PROMPT_LENS]


@pytest.fixture(scope="module")
def expected() -> list[list[int]]:
    model = AutoModelForCausalLM.from_pretrained(ensure_preset("tiny"), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    outputs = []
    for prompt, n in zip(_prompts(), MAX_TOKENS, strict=True):
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None)
        outputs.append(out[0, len(prompt) :].tolist())
    return outputs


@pytest.fixture(scope="module")
def runner() -> HfModelRunner:
    model, info = load_engine_model(SPEC)
    return build_runner(model, info, SPEC, SLOTS, info.limits.max_context, "")


@dataclass
class Served:
    tokens: dict[str, list[int]] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    moved_partial_prompt: bool = False  # a decode left while a prompt was part-way through its prefill
    kv_bytes_left: int = -1


def _serve(runner: HfModelRunner, config: EngineConfig) -> Served:
    scheduler = ColocatedScheduler(runner.kv, config, frozenset(), max_context=1024)
    served = Served()

    def request(i: int, prompt: list[int]) -> Request:
        served.tokens[str(i)] = []

        def emit(event: EngineEvent) -> None:
            assert isinstance(event, TokenOutput), event
            served.tokens[str(i)].append(event.token)

        params = SamplingParams(max_tokens=MAX_TOKENS[i], ignore_eos=True)
        return Request(str(i), params, 0, emit, prompt_ids=prompt)

    prompts, step = _prompts(), 0
    while step <= ARRIVAL_STEP[-1] or scheduler.requests():
        for i in (i for i, at in enumerate(ARRIVAL_STEP) if at == step):
            scheduler.add(request(i, prompts[i]))
        step += 1
        batch = scheduler.schedule()
        if batch is None:
            continue
        running_before = len(scheduler.running)
        scheduler.postprocess(batch, runner.run(batch.step_input()))
        finished = running_before + sum(c.last for c in batch.chunks) - len(scheduler.running)
        served.moved_partial_prompt |= finished > 0 and bool(scheduler.running.prefilling)
        served.batches.append(batch)
    served.kv_bytes_left = scheduler.load().kv_bytes_held
    return served


def _check(served: Served, expected: list[list[int]]) -> None:
    for i, want in enumerate(expected):
        assert served.tokens[str(i)] == want, f"request {i} (prompt {PROMPT_LENS[i]}, max_tokens {MAX_TOKENS[i]})"
    # Every prompt token is computed exactly once, with no padding; every decode token once too.
    assert sum(b.prefill_tokens for b in served.batches) == sum(PROMPT_LENS)
    assert sum(b.decode_tokens for b in served.batches) == sum(n - 1 for n in MAX_TOKENS)
    assert all(b.padded_tokens == b.prefill_tokens + b.decode_tokens for b in served.batches)
    assert served.kv_bytes_left == 0


@pytest.mark.parametrize("budget", [1, 7, 64, EngineConfig().step_token_budget])
def test_chunked_prefill_with_piggybacked_decodes(
    budget: int, runner: HfModelRunner, expected: list[list[int]]
) -> None:
    served = _serve(runner, EngineConfig(max_batch=SLOTS, policy=SchedulePolicy.CHUNKED, step_token_budget=budget))
    _check(served, expected)
    mixed = [b for b in served.batches if b.phase is Phase.MIXED]
    assert mixed, "no step ran decodes and a prompt chunk together"
    # A step computes the budget at most, or every decode plus one prompt token when the decodes fill it.
    assert all(b.padded_tokens <= max(budget, b.decode_tokens + 1) for b in served.batches)
    # The longest prompt spans ceil(150 / budget) steps at least; its first token comes after its last chunk.
    longest = [b for b in served.batches if any(c.request.request_id == "2" for c in b.chunks)]
    assert len(longest) >= -(-150 // budget)
    if budget <= 7:  # small chunks keep a prompt part-way for many steps, so decodes finish meanwhile
        assert served.moved_partial_prompt, "no decode left while a prompt was part-way through its prefill"


@pytest.mark.parametrize("policy", [SchedulePolicy.PREFILL_FIRST, SchedulePolicy.DECODE_FIRST])
def test_packed_prefill_policies(policy: SchedulePolicy, runner: HfModelRunner, expected: list[list[int]]) -> None:
    served = _serve(runner, EngineConfig(max_batch=SLOTS, policy=policy, prefill_token_budget=200))
    _check(served, expected)
    lengths = [sorted(c.length for c in b.chunks) for b in served.batches if b.phase is Phase.PREFILL]
    assert any(len(ls) > 1 and ls[-1] >= 10 * ls[0] for ls in lengths), f"no batch mixed lengths: {lengths}"


def test_a_packed_prefill_of_very_different_lengths(runner: HfModelRunner) -> None:
    prompts = [p for p, n in zip(_prompts(), PROMPT_LENS, strict=True) if n in (150, 3, 5, 9)]
    model = AutoModelForCausalLM.from_pretrained(ensure_preset("tiny"), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    # generate() applies the preset's generation config (its suppressed tokens), as pdsim's sampler does.
    want = [int(model.generate(torch.tensor([p]), max_new_tokens=1, do_sample=False)[0, -1]) for p in prompts]
    got = runner.run(StepInput.prefill([PrefillRow(slot, p, GREEDY) for slot, p in enumerate(prompts)])).tokens
    assert got == want


@pytest.mark.parametrize("budget", [7, 64, 4096])
def test_prefill_node_chunks_prompts_over_its_budget(budget: int, runner: HfModelRunner) -> None:
    """A prefill node's KV and first token do not depend on how its prompts were packed and chunked."""
    model = AutoModelForCausalLM.from_pretrained(ensure_preset("tiny"), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    prompts = _prompts()[:SLOTS]  # 3, 17, 150 and 5 tokens: one slot each, held until released
    outputs: dict[str, EngineEvent] = {}
    config = EngineConfig(max_batch=SLOTS, prefill_token_budget=budget)
    scheduler = PrefillScheduler(runner.kv, config, frozenset(), max_context=1024)
    for i, prompt in enumerate(prompts):
        emit = functools.partial(outputs.__setitem__, str(i))
        scheduler.add(Request(str(i), SamplingParams(max_tokens=2), 0, emit, prompt_ids=prompt))
    steps = []
    while (batch := scheduler.schedule()) is not None:
        assert batch.prefill_tokens <= budget
        scheduler.postprocess(batch, runner.run(batch.step_input()))
        steps.append(batch)
    assert len(steps) == -(-sum(len(p) for p in prompts) // budget)  # every step full but the last
    for i, prompt in enumerate(prompts):
        out = model(torch.tensor([prompt]), use_cache=True)
        output = outputs[str(i)]
        first = int(model.generate(torch.tensor([prompt]), max_new_tokens=1, do_sample=False)[0, -1])
        assert isinstance(output, PrefillOutput) and output.first_token == first  # suppressed tokens never come
        for layer, cached in enumerate(out.past_key_values.layers):
            stored = runner.kv.keys[layer][output.slot, :, : len(prompt)]
            torch.testing.assert_close(stored, cached.keys[0], atol=1e-5, rtol=1e-5)
    for i in range(len(prompts)):
        scheduler.release(str(i))
    assert scheduler.load().kv_bytes_held == 0 and sorted(scheduler.free_slots) == list(range(SLOTS))


def test_logprobs_are_the_models_log_softmax(runner: HfModelRunner) -> None:
    """Packed prefill then a decode step: each asking row's logprobs are `log_softmax(model(...).logits)`
    (raw logits, fp32), the top list sorted with the greedy token first; a row that did not ask gets none."""
    prompts = [p for p, n in zip(_prompts(), PROMPT_LENS, strict=True) if n in (17, 5)]
    model = AutoModelForCausalLM.from_pretrained(ensure_preset("tiny"), dtype=torch.float32).eval()  # type: ignore[no-untyped-call]
    suppressed = list(model.generation_config.suppress_tokens or [])
    assert suppressed, "the tiny preset suppresses some tokens: the check below needs them"
    asking = [SamplingRow(SamplingParams(logprobs=4), 0, 0), SamplingRow(SamplingParams(logprobs=0), 0, 0)]
    first = runner.run(StepInput.prefill([PrefillRow(s, p, asking[s]) for s, p in enumerate(prompts)]))
    assert first.logprobs is not None
    rows = [DecodeRow(first.tokens[s], len(p), SamplingRow(asking[s].params, 0, 1)) for s, p in enumerate(prompts)]
    second = runner.run(StepInput.decode(rows))
    assert second.logprobs is not None
    for step, output in ((0, first), (1, second)):
        assert output.logprobs is not None
        for s, prompt in enumerate(prompts):
            ids = prompt + first.tokens[s : s + 1] * step
            with torch.no_grad():
                want = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            want[suppressed] = float("-inf")  # never sampled, so never listed
            entry = output.logprobs[s]
            assert entry is not None
            assert abs(entry.logprob - want[output.tokens[s]].item()) < 1e-4
            k = asking[s].params.logprobs or 0
            assert len(entry.top) == k
            if k:
                assert entry.top[0][0] == output.tokens[s]  # greedy: the sampled token is the likeliest
                assert [t for t, _ in entry.top] == torch.topk(want, k).indices.tolist()
                assert all(abs(v - want[t].item()) < 1e-4 for t, v in entry.top)
    plain = runner.run(StepInput.prefill([PrefillRow(0, prompts[0], GREEDY)]))
    assert plain.logprobs is None  # nobody asked: nothing computed
