"""What the engine reports about each step, and the clock and observer list that wrap a step.

Plain data only: the node turns `StepStats` into metrics; tests read them directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pdsim.engine.batch import Batch
from pdsim.engine.request import Phase
from pdsim.engine.schedulers import Scheduler
from pdsim.engine.step import StepInput, StepOutput

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepStats:
    phase: Phase
    batch_size: int
    prefill_tokens: int  # prompt tokens computed (a mixed step counts both kinds)
    decode_tokens: int  # tokens of running decodes computed, one per decoding request
    generated: int  # tokens sampled: one per decode, and a first token per prompt that completed
    padded_tokens: int  # tokens the model actually ran, padding included
    started_at: float  # time.time()
    seconds: float
    waiting: int  # queued after the step
    running: int
    queue_seconds: tuple[float, ...] = ()  # time in the queue of each request that left it for this step
    step: StepInput | None = None  # what ran (its `segments()` are the step's shape)
    modeled_seconds: float | None = None  # emulated devices: the cost model's time for the step


StepObserver = Callable[[StepStats], None]


class StepClock:
    """Started when a step starts; `seconds` is read once the model has run (postprocessing is not step time)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self.seconds = 0.0

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._t0


class Observers:
    def __init__(self) -> None:
        self._observers: list[StepObserver] = []

    def add(self, observer: StepObserver) -> None:
        self._observers.append(observer)

    def notify(self, batch: Batch, step: StepInput, output: StepOutput, clock: StepClock, scheduler: Scheduler) -> None:
        """Report a step that has run and been postprocessed, with the scheduler's state after it."""
        stats = StepStats(
            batch.phase,
            len(batch.requests),
            batch.prefill_tokens,
            batch.decode_tokens,
            len(batch.sampled),
            batch.padded_tokens,
            clock.started_at,
            clock.seconds,
            len(scheduler.waiting),
            scheduler.num_running,
            scheduler.take_queue_seconds(),
            step,
            output.modeled_seconds,
        )
        for observer in self._observers:
            try:
                observer(stats)
            except Exception:  # a broken observer (metrics, tests) must not stop serving
                log.exception("step observer failed")
