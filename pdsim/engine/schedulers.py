"""Schedulers: what the engine runs next, and what happens to each request after a step.

One scheduler per role, sharing the request bookkeeping:
- colocated: prompts and decodes on one model, ordered by a `SchedulePolicy`;
- prefill (`pdsim.engine.prefill_scheduler`): prompts only; KV stays in its slot until the node pushed it;
- decode: requests whose KV arrived from a prefill node join the running batch as slots free up.
Schedulers run on the engine thread only; `load()` is the one method read from other threads.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pdsim.core.errors import DeadlineExceeded, PdsimError
from pdsim.core.requests import TokenLogprobs
from pdsim.engine.batch import Batch, Chunk
from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.engine.request import Failure, Request, TokenOutput, finish_reason
from pdsim.engine.running_batch import RunningBatch
from pdsim.engine.step import KvStore, StepOutput


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    waiting: int
    running: int
    kv_bytes_held: int
    kv_bytes_capacity: int
    kv_staged: int = 0


def take_prefill_batch(waiting: deque[Request], token_budget: int, admit: Callable[[Request], bool]) -> list[Request]:
    """FIFO prompts while their tokens fit the budget (packed: no padding; one prompt always fits) and `admit`
    takes them (it gives each a slot, or says False when there is no room)."""
    batch: list[Request] = []
    tokens = 0
    while waiting:
        if batch and tokens + waiting[0].prompt_len > token_budget:
            break
        if not admit(waiting[0]):
            break
        tokens += waiting[0].prompt_len
        batch.append(waiting.popleft())
    return batch


class Scheduler(ABC):
    def __init__(self, store: KvStore, config: EngineConfig, eos_token_ids: frozenset[int], max_context: int) -> None:
        self.store = store
        self.config = config
        self.eos_token_ids = eos_token_ids
        self.max_context = max_context
        self.waiting: deque[Request] = deque()
        self._queue_seconds: list[float] = []

    def add(self, request: Request) -> None:
        request.queued_at = request.queued_at or time.monotonic()  # the engine stamps it on submission
        self.waiting.append(request)

    def take_queue_seconds(self) -> tuple[float, ...]:
        """How long each request that left the queue since the last call had waited in it."""
        seconds, self._queue_seconds = tuple(self._queue_seconds), []
        return seconds

    # Requests leave the queue to run only through these two, which record how long each waited: a new way out
    # of the queue cannot forget to. (Aborted and expired requests never ran: their wait is not queue time.)
    def _take_prefill_batch(self, admit: Callable[[Request], bool]) -> list[Request]:
        batch = take_prefill_batch(self.waiting, self.config.prefill_token_budget, admit)
        self._record_queue_time(batch)
        return batch

    def _pop_waiting(self) -> Request:
        request = self.waiting.popleft()
        self._record_queue_time([request])
        return request

    def _record_queue_time(self, requests: Sequence[Request]) -> None:
        now = time.monotonic()
        self._queue_seconds.extend(now - r.queued_at for r in requests)
        for request in requests:
            request.started_at = now

    @abstractmethod
    def schedule(self) -> Batch | None:
        """The next batch to run, or None when there is nothing to run now."""

    @abstractmethod
    def postprocess(self, batch: Batch, output: StepOutput) -> None:
        """Apply one step's tokens (and their logprobs, where asked): emit them, finish requests, free their KV."""

    @abstractmethod
    def abort(self, request_id: str) -> None:
        """Forget a request wherever it is and free its KV (the client went away)."""

    @abstractmethod
    def load(self) -> LoadSnapshot: ...

    @property
    @abstractmethod
    def num_running(self) -> int:
        """Requests past their prefill that still hold KV here (cheap: read after every step)."""

    @abstractmethod
    def requests(self) -> list[Request]:
        """Every request the scheduler holds, queued or running."""

    def fail(self, batch: Batch, error: PdsimError) -> None:
        """The step itself failed: fail its requests and free their KV."""
        self._fail_each(batch.requests, error)

    def fail_all(self, error: PdsimError) -> None:
        """Something outside any one step failed: fail everything, so no client waits forever."""
        self._fail_each(self.requests(), error)

    def _fail_each(self, requests: Sequence[Request], error: PdsimError) -> None:
        for request in requests:
            self.abort(request.request_id)
            request.emit(Failure(error))

    def _drop_expired(self) -> None:
        now = time.monotonic()
        expired = [r for r in self.waiting if r.deadline is not None and r.deadline <= now]
        for request in expired:
            self.abort(request.request_id)
            request.emit(Failure(DeadlineExceeded(f"request {request.request_id} expired while queued")))

    def _remove_waiting(self, request_id: str) -> Request | None:
        for request in self.waiting:
            if request.request_id == request_id:
                self.waiting.remove(request)
                return request
        return None

    def _append_token(self, request: Request, token: int, logprobs: TokenLogprobs | None = None) -> bool:
        """Record and emit a token; True when the request has finished."""
        request.output_ids.append(token)
        reason = finish_reason(request, self.eos_token_ids, self.max_context)
        request.emit(TokenOutput(token, reason, logprobs))
        return reason is not None


class _DecodingScheduler(Scheduler):
    """Shared by the colocated and decode roles: a running batch that steps one token at a time."""

    def __init__(self, store: KvStore, config: EngineConfig, eos_token_ids: frozenset[int], max_context: int) -> None:
        super().__init__(store, config, eos_token_ids, max_context)
        self.running = RunningBatch(store)

    def postprocess(self, batch: Batch, output: StepOutput) -> None:
        # Count every row's new KV before anyone leaves: leaving moves another row's tokens.
        for request in batch.decodes:
            request.num_cached += 1
        for chunk in batch.chunks:
            chunk.request.num_cached = chunk.start + chunk.length
            if chunk.last:
                self.running.join(chunk.request)
        self._apply(batch.sampled, output.tokens, output.row_logprobs())

    def _apply(
        self, requests: Sequence[Request], tokens: Sequence[int], logprobs: Sequence[TokenLogprobs | None]
    ) -> None:
        for request, token, token_logprobs in zip(requests, tokens, logprobs, strict=True):
            if self._append_token(request, token, token_logprobs):
                self.running.leave(request)

    def requests(self) -> list[Request]:
        return [*self.waiting, *self.running.requests, *self.running.prefilling]

    def _admit(self, request: Request) -> bool:
        """Give the request a slot if the running batch has room for it."""
        if not self.running.has_room(request):
            return False
        self.running.admit(request)
        return True

    def _decode_batch(self) -> Batch | None:
        return Batch(decodes=list(self.running.requests)) if self.running else None

    def abort(self, request_id: str) -> None:
        if self._remove_waiting(request_id) is None:
            request = self.running.find(request_id)
            if request is not None:
                self.running.leave(request)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def load(self) -> LoadSnapshot:
        # On a decode node, KV still staged is counted by the staging area, which the node adds in.
        kv_bytes = self.running.kv_tokens() * self.store.layout.bytes_per_token
        return LoadSnapshot(len(self.waiting), len(self.running), kv_bytes, self.store.capacity_bytes)


class ColocatedScheduler(_DecodingScheduler):
    def schedule(self) -> Batch | None:
        self._drop_expired()
        if self.config.policy is SchedulePolicy.CHUNKED:
            return self._chunked_batch()
        prefill_allowed = self.config.policy is SchedulePolicy.PREFILL_FIRST or not self.running
        if self.waiting and self.running.has_room(self.waiting[0]) and prefill_allowed:
            return Batch.prefill(self._take_prefill_batch(self._admit))
        return self._decode_batch()

    def _chunked_batch(self) -> Batch | None:
        """Every decode, then prompt chunks first-in first-out in the rest of the step's token budget.

        The prompts always get at least one token, so they progress however many requests decode.
        """
        decodes = list(self.running.requests)
        budget = max(self.config.step_token_budget - len(decodes), 1)
        chunks: list[Chunk] = []
        for request in self.running.prefilling:  # at most one stopped part-way; it goes on first
            if budget > 0:
                length = min(budget, request.prompt_len - request.num_cached)
                chunks.append(Chunk(request, request.num_cached, length))
                budget -= length
        while budget > 0 and self.waiting and self.running.has_room(self.waiting[0]):
            request = self._pop_waiting()
            self.running.admit(request)
            chunks.append(Chunk(request, 0, min(budget, request.prompt_len)))
            budget -= chunks[-1].length
        return Batch(decodes, chunks) if decodes or chunks else None


class DecodeScheduler(_DecodingScheduler):
    """Requests arrive with their KV staged; joining the batch copies it into the next slot."""

    def schedule(self) -> Batch | None:
        self._drop_expired()
        while self.waiting and self.running.has_room(self.waiting[0]):
            request = self._pop_waiting()
            assert request.staged is not None
            self.running.admit(request)
            self.store.write_staged(request.slot, request.staged)
            self._release_staged(request)
            request.num_cached = request.prompt_len
            self.running.join(request)
        return self._decode_batch()

    def abort(self, request_id: str) -> None:
        request = self._remove_waiting(request_id)
        if request is not None:
            self._release_staged(request)
        else:
            super().abort(request_id)

    @staticmethod
    def _release_staged(request: Request) -> None:
        if request.staged is not None:
            request.staged.release()
            request.staged = None
