"""The engine thread outlives failures and enforces its queue bound."""

from __future__ import annotations

import threading

import pytest

from pdsim.core.errors import ResourceExhausted
from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import SamplingParams
from pdsim.engine.config import EngineConfig
from pdsim.engine.engine import Engine
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.request import EngineEvent, Failure, Request, TokenOutput
from pdsim.engine.schedulers import ColocatedScheduler
from pdsim.engine.step import StepInput, StepOutput

LAYOUT = KvLayout(1, 1, 2, "float32")


class GatedRunner:
    """Prefill waits for `gate`; every token is 7."""

    def __init__(self, store: SlotKvStore) -> None:
        self.kv = store
        self.gate = threading.Event()
        self.entered = threading.Event()

    def run(self, step: StepInput) -> StepOutput:
        if step.chunks:
            self.entered.set()
            self.gate.wait(10)
        return StepOutput([7] * (len(step.decodes) + sum(c.sampling is not None for c in step.chunks)))


def _engine(max_waiting: int) -> tuple[Engine, GatedRunner, ColocatedScheduler]:
    store = SlotKvStore(LAYOUT, 4, 64, "cpu")
    config = EngineConfig(max_batch=4, max_waiting=max_waiting, prefill_token_budget=4)
    scheduler = ColocatedScheduler(store, config, frozenset(), max_context=64)
    runner = GatedRunner(store)
    return Engine(runner, scheduler, config.max_waiting), runner, scheduler


def _request(name: str, events: list[EngineEvent], done: threading.Event | None = None) -> Request:
    def emit(event: EngineEvent) -> None:
        events.append(event)
        if done is not None and (
            isinstance(event, Failure) or (isinstance(event, TokenOutput) and event.finish_reason)
        ):
            done.set()

    return Request(name, SamplingParams(max_tokens=2), 0, emit, prompt_ids=[1, 2, 3, 4])


def test_queue_bound_counts_requests_still_in_the_inbox() -> None:
    engine, runner, _ = _engine(max_waiting=2)
    engine.start()
    try:
        events: list[EngineEvent] = []
        engine.submit(_request("running", events))
        assert runner.entered.wait(5)  # the engine is busy in a prefill step: nothing else is dequeued
        engine.submit(_request("a", events))
        engine.submit(_request("b", events))
        with pytest.raises(ResourceExhausted, match="2 requests are already queued"):
            engine.submit(_request("c", events))
    finally:
        runner.gate.set()
        engine.stop()


def test_an_error_outside_a_step_fails_requests_but_not_the_engine() -> None:
    engine, runner, scheduler = _engine(max_waiting=8)
    runner.gate.set()
    original = scheduler.schedule
    calls = {"n": 0}

    def schedule_failing_once():  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1 and scheduler.waiting:
            raise RuntimeError("scheduler bug")
        return original()

    scheduler.schedule = schedule_failing_once  # type: ignore[method-assign]
    engine.start()
    try:
        first, second = threading.Event(), threading.Event()
        events_a: list[EngineEvent] = []
        events_b: list[EngineEvent] = []
        engine.submit(_request("a", events_a, first))
        assert first.wait(5)
        assert isinstance(events_a[-1], Failure) and "scheduler bug" in str(events_a[-1].error)
        engine.submit(_request("b", events_b, second))
        assert second.wait(5)
        assert [e.token for e in events_b if isinstance(e, TokenOutput)] == [7, 7]
    finally:
        engine.stop()
