"""The engine: one thread that owns the scheduler, the model runner and the KV store.

Other threads talk to it only through its inbox (submit, abort); it answers through each request's
`emit` callback and reports every step as a `StepStats` to its observers. The loop is: take commands →
schedule → run the model → apply the results.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from pdsim.core.errors import PdsimError, ResourceExhausted, Unavailable
from pdsim.engine.batch import Batch
from pdsim.engine.request import Request
from pdsim.engine.schedulers import LoadSnapshot, Scheduler
from pdsim.engine.step import ModelRunner, StepInput, StepOutput
from pdsim.engine.step_stats import Observers, StepClock, StepObserver, StepStats

__all__ = ["Engine", "StepObserver", "StepStats"]

log = logging.getLogger(__name__)

_IDLE_POLL_SECONDS = 0.1  # how often an idle engine wakes to expire queued requests' deadlines


_Command = Callable[[Scheduler], None]


class Engine:
    def __init__(self, runner: ModelRunner, scheduler: Scheduler, max_waiting: int, name: str = "engine") -> None:
        self.runner = runner
        self.scheduler = scheduler
        self.max_waiting = max_waiting
        self.steps = 0
        self._observers = Observers()
        self._inbox: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._admission = threading.Lock()
        self._submitted = 0  # requests handed to the inbox that the scheduler has not queued yet
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    # ---------------------------------------------------------------- any thread
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._inbox.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def add_observer(self, observer: StepObserver) -> None:
        self._observers.add(observer)

    def submit(self, request: Request) -> None:
        if not self._thread.is_alive():
            raise Unavailable("this node's engine is not running")
        with self._admission:
            if len(self.scheduler.waiting) + self._submitted >= self.max_waiting:
                raise ResourceExhausted(f"{self.max_waiting} requests are already queued on this node")
            self._submitted += 1
        request.queued_at = time.monotonic()  # the wait in the inbox (behind a running step) is queue time too
        self._inbox.put(lambda s: self._queue(s, request))

    def _queue(self, scheduler: Scheduler, request: Request) -> None:
        with self._admission:
            self._submitted -= 1
        scheduler.add(request)

    def abort(self, request_id: str) -> None:
        """Forget the request and free its KV (on a prefill node: once its KV has been pushed)."""
        self._inbox.put(lambda s: s.abort(request_id))

    def load(self) -> LoadSnapshot:
        return self.scheduler.load()

    # ---------------------------------------------------------------- engine thread
    def _loop(self) -> None:
        idle = True
        while True:
            try:
                if not self._take_commands(block=idle):
                    return
                batch = self.scheduler.schedule()
                idle = batch is None
                if batch is not None:
                    self._step(batch)
            except Exception as exc:  # the engine must outlive any one request's failure
                log.exception("engine error; failing every request this node holds")
                self.scheduler.fail_all(PdsimError(f"engine error: {exc}"))
                idle = True

    def _take_commands(self, block: bool) -> bool:
        """Apply queued commands (waiting a little when idle); False once stop was asked."""
        try:
            command = self._inbox.get(timeout=_IDLE_POLL_SECONDS) if block else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while command is not None:
            command(self.scheduler)
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return True
        return False

    def _step(self, batch: Batch) -> None:
        clock = StepClock()
        step = batch.step_input()
        output = self._run(batch, step)
        if output is not None:
            clock.stop()
            self.scheduler.postprocess(batch, output)
            self.steps += 1
            self._observers.notify(batch, step, output, clock, self.scheduler)

    def _run(self, batch: Batch, step: StepInput) -> StepOutput | None:
        """The step's tokens, or None when the step failed and its requests were failed with it."""
        try:
            return self.runner.run(step)
        except Exception as exc:  # a failed step must not kill the node: fail its requests instead
            log.exception("%s step failed", batch.phase.value)
            self.scheduler.fail(batch, PdsimError(f"{batch.phase.value} step failed: {exc}"))
            return None
