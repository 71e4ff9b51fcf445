"""Schedulers driven directly with a scripted runner: no model, exact control of every step."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch

from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import FinishReason, SamplingParams
from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.request import EngineEvent, Phase, Request, TokenOutput
from pdsim.engine.running_batch import RunningBatch
from pdsim.engine.schedulers import ColocatedScheduler, take_prefill_batch
from pdsim.engine.step import StepInput, StepOutput

LAYOUT = KvLayout(num_layers=1, num_kv_heads=1, head_dim=2, dtype="float32")
EOS = 99


class ScriptedRunner:
    """Token 7 for every row; records what each step was asked to run."""

    def __init__(self, store: SlotKvStore, token: int = 7) -> None:
        self.kv = store
        self.token = token
        self.steps: list[tuple[str, list[int]]] = []

    def run(self, step: StepInput) -> StepOutput:
        if step.chunks:
            self.steps.append(("prefill", [r.slot for r in step.chunks]))
        if step.decodes:
            self.steps.append(("decode", [r.position for r in step.decodes]))
        return StepOutput([self.token] * (len(step.decodes) + sum(c.sampling is not None for c in step.chunks)))


def _request(name: str, prompt_len: int, max_tokens: int, events: list[tuple[str, EngineEvent]]) -> Request:
    return Request(
        request_id=name,
        params=SamplingParams(max_tokens=max_tokens),
        seed=0,
        emit=lambda e: events.append((name, e)),
        prompt_ids=[1] * prompt_len,
    )


def _step(scheduler: ColocatedScheduler, runner: ScriptedRunner) -> Phase | None:
    batch = scheduler.schedule()
    if batch is None:
        return None
    scheduler.postprocess(batch, runner.run(batch.step_input()))
    return batch.phase


def _scheduler(policy: SchedulePolicy, slots: int = 4) -> tuple[ColocatedScheduler, ScriptedRunner]:
    store = SlotKvStore(LAYOUT, slots, 64, "cpu")
    config = EngineConfig(max_batch=slots, prefill_token_budget=32, policy=policy)
    return ColocatedScheduler(store, config, frozenset({EOS}), max_context=64), ScriptedRunner(store)


def test_prefill_first_runs_a_new_prompt_before_the_next_decode_step() -> None:
    events: list[tuple[str, EngineEvent]] = []
    scheduler, runner = _scheduler(SchedulePolicy.PREFILL_FIRST)
    scheduler.add(_request("a", 5, 10, events))
    assert [_step(scheduler, runner), _step(scheduler, runner)] == [Phase.PREFILL, Phase.DECODE]
    scheduler.add(_request("b", 3, 10, events))
    assert _step(scheduler, runner) is Phase.PREFILL
    assert runner.steps[-1] == ("prefill", [1])  # b joins the batch in the next slot
    assert _step(scheduler, runner) is Phase.DECODE
    assert runner.steps[-1] == ("decode", [6, 3])  # a: 5 prompt + 1 decoded; b: right after its prompt


def test_decode_first_holds_new_prompts_until_the_batch_drains() -> None:
    events: list[tuple[str, EngineEvent]] = []
    scheduler, runner = _scheduler(SchedulePolicy.DECODE_FIRST)
    scheduler.add(_request("a", 5, 3, events))
    _step(scheduler, runner)
    scheduler.add(_request("b", 3, 2, events))
    phases = [_step(scheduler, runner) for _ in range(4)]
    assert phases == [Phase.DECODE, Phase.DECODE, Phase.PREFILL, Phase.DECODE]
    finished = [name for name, e in events if isinstance(e, TokenOutput) and e.finish_reason]
    assert finished == ["a", "b"]


def test_requests_finish_on_max_tokens_and_eos_and_free_their_slots() -> None:
    events: list[tuple[str, EngineEvent]] = []
    scheduler, runner = _scheduler(SchedulePolicy.PREFILL_FIRST)
    scheduler.add(_request("one", 4, 1, events))  # finishes at its first token
    scheduler.add(_request("three", 4, 3, events))
    while _step(scheduler, runner):
        pass
    reasons = {name: e.finish_reason for name, e in events if isinstance(e, TokenOutput) and e.finish_reason}
    assert reasons == {"one": FinishReason.LENGTH, "three": FinishReason.LENGTH}
    assert len([e for name, e in events if name == "three"]) == 3
    assert scheduler.load().kv_bytes_held == 0 and scheduler.load().running == 0


def test_prefill_batch_budget_counts_real_tokens() -> None:
    events: list[tuple[str, EngineEvent]] = []

    def lengths(budget: int, prompts: Sequence[int], free_slots: int = 8) -> list[int]:
        waiting = deque(_request(str(i), n, 1, events) for i, n in enumerate(prompts))
        admitted: list[Request] = []

        def admit(request: Request) -> bool:
            if len(admitted) == free_slots:
                return False
            admitted.append(request)
            return True

        return [r.prompt_len for r in take_prefill_batch(waiting, budget, admit)]

    assert lengths(29, [8, 8, 10, 3]) == [8, 8, 10, 3]  # packed: 29 tokens, no padding
    assert lengths(28, [8, 8, 10, 3]) == [8, 8, 10]
    assert lengths(30, [2, 20, 2, 2]) == [2, 20, 2, 2]  # padded, these would have cost 4 x 20 = 80
    assert lengths(5, [40, 1]) == [40]  # a prompt over the budget still runs, alone
    assert lengths(100, [1, 1, 1], free_slots=2) == [1, 1]


def test_leaving_the_running_batch_moves_the_last_request_and_its_kv() -> None:
    store = SlotKvStore(LAYOUT, 3, 8, "cpu")
    batch = RunningBatch(store)
    requests = []
    for slot in range(3):
        request = Request(str(slot), SamplingParams(), 0, lambda e: None, prompt_ids=[1])
        batch.admit(request)
        request.num_cached = 4
        store.keys[0][slot, :, :4] = float(slot + 1)
        batch.join(request)
        requests.append(request)
    batch.leave(requests[0])
    assert [r.request_id for r in batch.requests] == ["2", "1"]
    assert requests[2].slot == 0
    assert torch.all(store.keys[0][0, :, :4] == 3.0)


def test_chunked_steps_run_every_decode_and_fill_the_rest_with_prompt_chunks() -> None:
    events: list[tuple[str, EngineEvent]] = []
    store = SlotKvStore(LAYOUT, 4, 64, "cpu")
    config = EngineConfig(max_batch=4, policy=SchedulePolicy.CHUNKED, step_token_budget=4)
    scheduler, runner = ColocatedScheduler(store, config, frozenset(), max_context=64), ScriptedRunner(store)
    scheduler.add(_request("a", 3, 10, events))
    scheduler.add(_request("b", 9, 10, events))
    for _ in range(4):
        _step(scheduler, runner)
    assert runner.steps == [
        ("prefill", [0, 1]),  # a whole (3 tokens) and b's first token
        ("prefill", [1]),  # b's next 3 tokens and a's decode, in one step
        ("decode", [3]),
        ("prefill", [1]),
        ("decode", [4]),
        ("prefill", [1]),  # b's last 2 tokens: its first token is sampled in this step
        ("decode", [5]),
    ]
    assert [name for name, e in events] == ["a", "a", "a", "a", "b"]
    assert _step(scheduler, runner) is Phase.DECODE  # both decode: 2 tokens, nothing waits
    assert runner.steps[-1] == ("decode", [6, 9])


def test_prompts_part_way_through_prefill_stay_right_after_the_decodes_with_their_kv() -> None:
    store = SlotKvStore(LAYOUT, 5, 8, "cpu")
    batch = RunningBatch(store)
    requests = {}
    for slot, name in enumerate(["d0", "d1", "p0", "p1", "p2"]):
        request = Request(name, SamplingParams(), 0, lambda e: None, prompt_ids=[1] * 8)
        batch.admit(request)
        request.num_cached = 4
        store.keys[0][slot, :, :4] = float(slot + 1)
        if name.startswith("d"):
            batch.join(request)
        requests[name] = request

    batch.leave(requests["p0"])  # an aborted prompt: the prompts behind it move down, KV and all
    assert [(r.request_id, r.slot) for r in batch.prefilling] == [("p1", 2), ("p2", 3)]
    batch.leave(requests["d0"])  # a finished decode: the last decode fills its slot, the prompts move down
    assert [(r.request_id, r.slot) for r in batch.requests] == [("d1", 0)]
    assert [(r.request_id, r.slot) for r in batch.prefilling] == [("p1", 1), ("p2", 2)]
    assert [float(store.keys[0][slot, 0, 3, 0]) for slot in range(3)] == [2.0, 4.0, 5.0]
    assert batch.free_slots == 2 and batch.kv_tokens() == 12


def test_ignore_eos_keeps_generating_past_eos() -> None:
    """The scripted model emits EOS every step: a request ends at its first token, unless it ignores EOS."""
    events: list[tuple[str, EngineEvent]] = []
    scheduler, runner = _scheduler(SchedulePolicy.PREFILL_FIRST)
    eos_runner = ScriptedRunner(runner.kv, token=EOS)
    scheduler.add(_request("plain", 3, 5, events))
    ignoring = SamplingParams(max_tokens=5, ignore_eos=True)
    scheduler.add(Request("ignoring", ignoring, 0, lambda e: events.append(("ignoring", e)), prompt_ids=[1, 1, 1]))
    while _step(scheduler, eos_runner) is not None:
        pass
    outputs = {name: [e for n, e in events if n == name] for name in ("plain", "ignoring")}
    assert all(isinstance(e, TokenOutput) for e in outputs["plain"] + outputs["ignoring"])
    assert [(e.token, e.finish_reason) for e in outputs["plain"] if isinstance(e, TokenOutput)] == [
        (EOS, FinishReason.STOP)
    ]
    reasons = [e.finish_reason for e in outputs["ignoring"] if isinstance(e, TokenOutput)]
    assert reasons == [None] * 4 + [FinishReason.LENGTH]  # past EOS, up to max_tokens
