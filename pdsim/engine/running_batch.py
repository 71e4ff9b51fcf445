"""The running decode batch: request i sits in KV slot i, so attention reads plain views of the store.

When a request leaves, the last one moves into its slot (a copy of that one request's tokens), keeping the
batch packed in slots 0..B-1.
"""

from __future__ import annotations

from pdsim.engine.kv_store import SlotKvStore
from pdsim.engine.request import Request


class RunningBatch:
    def __init__(self, store: SlotKvStore) -> None:
        self.store = store
        self.requests: list[Request] = []

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def free_slots(self) -> int:
        return self.store.num_slots - len(self.requests)

    def join(self, request: Request) -> None:
        assert request.slot == len(self.requests), (request.slot, len(self.requests))
        self.requests.append(request)

    def leave(self, request: Request) -> None:
        slot = request.slot
        assert self.requests[slot] is request
        last = self.requests.pop()
        if last is not request:
            self.store.move(last.slot, slot, last.num_cached)
            last.slot = slot
            self.requests[slot] = last
        request.slot = -1

    def find(self, request_id: str) -> Request | None:
        return next((r for r in self.requests if r.request_id == request_id), None)

    def kv_tokens(self) -> int:
        return sum(r.num_cached for r in list(self.requests))
