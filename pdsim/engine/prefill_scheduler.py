"""The prefill node's scheduler: packed batches of whole prompts, and KV held in its slot until the node has
pushed it to a decode node and releases it."""

from __future__ import annotations

from collections.abc import Sequence

from pdsim.core.errors import PdsimError
from pdsim.engine.batch import Batch
from pdsim.engine.config import EngineConfig
from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.request import PrefillOutput, Request, finish_reason
from pdsim.engine.schedulers import LoadSnapshot, Scheduler


class PrefillScheduler(Scheduler):
    """A prompt's KV stays in its slot after the step until `release` (the node pushed it elsewhere)."""

    def __init__(
        self, store: SlotKvStore, config: EngineConfig, eos_token_ids: frozenset[int], max_context: int
    ) -> None:
        super().__init__(store, config, eos_token_ids, max_context)
        self.free_slots = list(range(store.num_slots - 1, -1, -1))
        self.held: dict[str, Request] = {}

    def schedule(self) -> Batch | None:
        self._drop_expired()
        if not self.waiting or not self.free_slots:
            return None
        batch = self._take_prefill_batch(len(self.free_slots))
        for request in batch:
            request.slot = self.free_slots.pop()
        return Batch.prefill(batch)

    def postprocess(self, batch: Batch, tokens: Sequence[int]) -> None:
        for request, token in zip(batch.sampled, tokens, strict=True):
            request.num_cached = request.prompt_len
            request.output_ids.append(token)
            reason = finish_reason(request, self.eos_token_ids, self.max_context)
            if reason is None:
                self.held[request.request_id] = request
                slot = request.slot
            else:
                self._free(request)
                slot = -1
            request.emit(PrefillOutput(token, reason, slot, request.prompt_len))

    def requests(self) -> list[Request]:
        return [*self.waiting, *self.held.values()]

    def release(self, request_id: str) -> None:
        request = self.held.pop(request_id, None)
        if request is not None:
            self._free(request)

    def abort(self, request_id: str) -> None:
        if self._remove_waiting(request_id) is None:
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
        held_tokens = sum(r.num_cached for r in list(self.held.values()))
        return LoadSnapshot(
            len(self.waiting),
            len(self.held),
            held_tokens * self.store.layout.bytes_per_token,
            self.store.capacity_bytes,
        )
