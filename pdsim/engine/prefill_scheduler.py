"""The prefill node's scheduler: prompts packed first-in first-out into steps of `prefill_token_budget` tokens,
and each prompt's KV held in its slot until the node has pushed it to a decode node and releases it.

A prompt longer than what is left of a step's budget is chunked: it goes on in the next step (attending to its
chunks already in its slot), so no step runs longer than the budget and its first token comes after its last.
"""

from __future__ import annotations

from pdsim.core.errors import PdsimError
from pdsim.engine.batch import Batch, Chunk
from pdsim.engine.config import EngineConfig
from pdsim.engine.request import PrefillOutput, Request, finish_reason
from pdsim.engine.schedulers import LoadSnapshot, Scheduler
from pdsim.engine.step import KvStore, StepOutput


class PrefillScheduler(Scheduler):
    """A prompt's KV stays in its slot after the step until `release` (the node pushed it elsewhere)."""

    def __init__(self, store: KvStore, config: EngineConfig, eos_token_ids: frozenset[int], max_context: int) -> None:
        super().__init__(store, config, eos_token_ids, max_context)
        self.free_slots = list(range(store.num_slots - 1, -1, -1))
        self.held: dict[str, Request] = {}
        self.partial: Request | None = None  # the prompt a step left part-way: the next step goes on with it

    def schedule(self) -> Batch | None:
        self._drop_expired()
        budget = self.config.prefill_token_budget
        chunks: list[Chunk] = []
        if self.partial is not None:
            request = self.partial
            chunks.append(Chunk(request, request.num_cached, min(budget, request.prompt_len - request.num_cached)))
            budget -= chunks[-1].length
        while budget > 0 and self.waiting and self.free_slots:
            request = self._pop_waiting()
            request.slot = self.free_slots.pop()
            chunks.append(Chunk(request, 0, min(budget, request.prompt_len)))
            budget -= chunks[-1].length
        return Batch(chunks=chunks) if chunks else None

    def postprocess(self, batch: Batch, output: StepOutput) -> None:
        for chunk in batch.chunks:
            chunk.request.num_cached = chunk.start + chunk.length
        last = batch.chunks[-1]
        self.partial = None if last.last else last.request
        for request, token, token_logprobs in zip(batch.sampled, output.tokens, output.row_logprobs(), strict=True):
            request.output_ids.append(token)
            reason = finish_reason(request, self.eos_token_ids, self.max_context)
            if reason is None:
                self.held[request.request_id] = request
                slot = request.slot
            else:
                self._free(request)
                slot = -1
            request.emit(PrefillOutput(token, reason, slot, request.prompt_len, token_logprobs))

    def requests(self) -> list[Request]:
        partial = [self.partial] if self.partial is not None else []
        return [*self.waiting, *partial, *self.held.values()]

    def release(self, request_id: str) -> None:
        request = self.held.pop(request_id, None)
        if request is not None:
            self._free(request)

    def abort(self, request_id: str) -> None:
        if self._remove_waiting(request_id) is not None:
            return
        if self.partial is not None and self.partial.request_id == request_id:
            partial, self.partial = self.partial, None
            if partial.slot >= 0:  # `fail` may have freed it already
                self._free(partial)
            return
        self.release(request_id)

    def fail(self, batch: Batch, error: PdsimError) -> None:
        for request in batch.requests:
            if request.slot >= 0 and request.request_id not in self.held:
                self._free(request)
        super().fail(batch, error)

    def _free(self, request: Request) -> None:
        self.free_slots.append(request.slot)
        request.slot = -1

    @property
    def num_running(self) -> int:
        return len(self.held)

    def load(self) -> LoadSnapshot:
        partial = self.partial
        held_tokens = sum(r.num_cached for r in list(self.held.values())) + (partial.num_cached if partial else 0)
        return LoadSnapshot(
            len(self.waiting),
            len(self.held),
            held_tokens * self.store.layout.bytes_per_token,
            self.store.capacity_bytes,
        )
