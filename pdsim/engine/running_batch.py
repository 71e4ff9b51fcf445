"""The running batch and the prompts part-way through their prefill, laid out in KV slots without gaps.

Decoding request i sits in slot i, so attention reads plain views of the store. Prompts being prefilled in
chunks sit in the slots right after the decodes, in admission order, so the first of them is always the next
to join the decodes (chunks run first-in, first-out: only the last prompt of a step can stop part-way).
When a request leaves, the last decode moves into its slot and each prompt behind moves down one slot: a copy
of those requests' own tokens, never of the whole cache.
"""

from __future__ import annotations

from pdsim.engine.request import Request
from pdsim.engine.step import KvStore


class RunningBatch:
    def __init__(self, store: KvStore) -> None:
        self.store = store
        self.requests: list[Request] = []  # decoding, request i in slot i
        self.prefilling: list[Request] = []  # in slots len(requests).. in admission order
        self._reserved = 0  # tokens the admitted requests may grow to (see `has_room`), kept as they come and go

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def free_slots(self) -> int:
        return self.store.num_slots - len(self.requests) - len(self.prefilling)

    def has_room(self, request: Request) -> bool:
        """A free slot, and room in the store for the request's whole context (its prompt and every token it may
        generate) beside what the admitted requests may grow to: reserving the most a request can hold means no
        running request is ever preempted. A store of slots that each hold a whole context always has that room
        when a slot is free; an emulated device's store, sized by its memory, may not."""
        return bool(self.free_slots) and self._reserved + self._most_tokens(request) <= self.store.capacity_tokens

    def _most_tokens(self, request: Request) -> int:
        return min(request.prompt_len + request.params.max_tokens, self.store.max_tokens)

    def admit(self, request: Request) -> None:
        """Give a prompt the next free slot; it joins the decodes once its prefill is done."""
        assert self.has_room(request)
        request.slot = len(self.requests) + len(self.prefilling)
        self.prefilling.append(request)
        self._reserved += self._most_tokens(request)

    def join(self, request: Request) -> None:
        assert self.prefilling and self.prefilling[0] is request, "prompts join in admission order"
        assert request.slot == len(self.requests), (request.slot, len(self.requests))
        self.prefilling.pop(0)
        self.requests.append(request)

    def leave(self, request: Request) -> None:
        slot = request.slot
        if request in self.prefilling:
            index = self.prefilling.index(request)
            self.prefilling.pop(index)
            self._close_gap(slot, self.prefilling[index:])
        else:
            assert self.requests[slot] is request
            last = self.requests.pop()
            if last is not request:
                self.store.move(last.slot, slot, last.num_cached)
                last.slot = slot
                self.requests[slot] = last
            self._close_gap(len(self.requests), self.prefilling)
        request.slot = -1
        self._reserved -= self._most_tokens(request)

    def _close_gap(self, free: int, behind: list[Request]) -> None:
        """Slot `free` was vacated: move each request in `behind` (in slot order) down one slot."""
        for request in behind:
            assert request.slot == free + 1, (request.slot, free)
            self.store.move(request.slot, free, request.num_cached)
            request.slot, free = free, request.slot

    def find(self, request_id: str) -> Request | None:
        return next((r for r in (*self.requests, *self.prefilling) if r.request_id == request_id), None)

    def kv_tokens(self) -> int:
        return sum(r.num_cached for r in (*list(self.requests), *list(self.prefilling)))
