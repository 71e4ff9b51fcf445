"""Decode-side staging: KV pushed by a prefill node, held under a lease until a Decode claims it.

The lease starts when the push starts (the arena range is reserved then), so a push that never completes holds
its range no longer than a complete one nobody claims: its receiver drops it at the lease's end, `expire` frees
complete KV nobody claimed. The router releases a cancelled request's KV at once (`release_id`); an id released
before its push arrived is remembered for one lease, so a push already on its way is refused rather than staged.

The staging area is one arena allocated (and touched) when the node starts (`pdsim.kv.receive` sizes it from
the model and the engine configuration); each request gets a contiguous range of it, sized from its header
before any chunk arrives, and the chunks are written there in place. Allocating fresh memory per request
instead costs more than the transfer (page faults on every push). Joining the running batch copies the request
into a KV slot once. Thread-safe: the node's event loop pushes and claims, the engine thread releases.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

from pdsim.core.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, ResourceExhausted
from pdsim.core.kv_layout import KvLayout


class StagedEntry:
    def __init__(
        self, staging: KvStaging, request_id: str, layout: KvLayout, num_tokens: int, start: int, buffer: memoryview
    ) -> None:
        self._staging = staging
        self.request_id = request_id
        self.layout = layout
        self.num_tokens = num_tokens
        self.start = start  # where in the arena
        self.buffer = buffer
        self.expires_at: float | None = None  # the lease's end, from the reservation until claimed
        self.complete = False  # every chunk is in
        self.claimed = False
        self.dropped = False  # released while still arriving: its receiver stops and frees it

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def release(self) -> None:
        self._staging.release(self)


class KvStaging:
    def __init__(
        self,
        layout: KvLayout,
        capacity_tokens: int,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layout = layout
        self.capacity_bytes = capacity_tokens * layout.bytes_per_token
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, StagedEntry] = {}
        self._released: dict[str, float] = {}  # ids released before any KV arrived -> when to forget them
        self._held_bytes = 0
        self._arena = memoryview(bytearray(self.capacity_bytes))  # bytearray(n) writes every page now
        self._free = [(0, self.capacity_bytes)]  # (start, size), sorted by start, never adjacent

    def reserve(self, request_id: str, num_tokens: int) -> StagedEntry:
        nbytes = num_tokens * self.layout.bytes_per_token
        if nbytes > self.capacity_bytes:
            raise FailedPrecondition(
                f"KV of {num_tokens} tokens ({nbytes} bytes) can never fit this node's staging area of "
                f"{self.capacity_bytes} bytes; start it with more --staging-tokens"
            )
        with self._lock:
            if request_id in self._released:
                raise Aborted(f"request {request_id!r} was cancelled and its KV released: it is not staged")
            if request_id in self._entries:
                raise AlreadyExists(f"KV for request {request_id!r} is already held on this node")
            start = self._allocate(nbytes)
            if start is None:
                free = self.capacity_bytes - self._held_bytes
                why = "not enough free" if free < nbytes else f"{free} bytes free but not contiguous"
                raise ResourceExhausted(
                    f"no room for {nbytes} bytes of KV ({why}): {self._held_bytes} of {self.capacity_bytes} held"
                )
            entry = StagedEntry(self, request_id, self.layout, num_tokens, start, self._arena[start : start + nbytes])
            entry.expires_at = self._clock() + self.lease_seconds  # the lease starts with the push
            self._entries[request_id] = entry
            self._held_bytes += nbytes
            return entry

    def commit(self, entry: StagedEntry) -> None:
        """All chunks are in: a Decode may claim it until its lease ends. Raises `Aborted` if it was released
        meanwhile (the caller still owns the entry and frees it)."""
        with self._lock:
            if entry.dropped:
                raise Aborted(f"request {entry.request_id!r} was cancelled while its KV arrived: it is not staged")
            entry.complete = True

    def seconds_left(self, entry: StagedEntry) -> float:
        """Of the entry's lease (0 once it ended); for the receiver that bounds a push by it."""
        assert entry.expires_at is not None, "a claimed entry has no lease"
        return max(0.0, entry.expires_at - self._clock())

    def claim(self, request_id: str) -> StagedEntry:
        """Hand complete KV to a Decode; from then on only `release` frees it."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None:
                raise NotFound(f"no KV to decode for request {request_id!r}: it is unknown or its lease expired")
            if entry.claimed:
                raise NotFound(f"the KV of request {request_id!r} is already claimed by another Decode")
            if not entry.complete:
                raise NotFound(f"the KV of request {request_id!r} is still arriving")
            entry.expires_at = None
            entry.claimed = True
            return entry

    def release(self, entry: StagedEntry) -> None:
        with self._lock:
            if self._entries.get(entry.request_id) is entry:
                self._forget(entry)

    def release_id(self, request_id: str) -> bool:
        """The request was cancelled: free its KV now if it is staged and unclaimed (True), stop it if it is still
        arriving (True: its receiver frees it), or refuse its push for one lease if none arrived yet. Claimed KV
        belongs to its Decode, whose cancellation frees it (False)."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None:
                self._released[request_id] = self._clock() + self.lease_seconds
                return False
            if entry.claimed:
                return False
            if entry.complete:
                self._forget(entry)
            else:
                entry.dropped = True
            return True

    def expire(self) -> list[str]:
        """Free complete KV whose lease ended unclaimed; returns their request ids. KV still arriving is its
        receiver's to free (it is writing into the range), which it does at the same lease end."""
        now = self._clock()
        with self._lock:
            expired = [
                e for e in self._entries.values() if e.complete and e.expires_at is not None and e.expires_at <= now
            ]
            for entry in expired:
                self._forget(entry)
            for request_id in [r for r, until in self._released.items() if until <= now]:
                del self._released[request_id]
        return [e.request_id for e in expired]

    # ---------------------------------------------------------------- under the lock
    def _forget(self, entry: StagedEntry) -> None:
        del self._entries[entry.request_id]
        self._held_bytes -= entry.nbytes
        self._give_back(entry.start, entry.nbytes)

    def _allocate(self, nbytes: int) -> int | None:
        """First fit: the lowest free range that holds `nbytes`."""
        for i, (start, size) in enumerate(self._free):
            if size >= nbytes:
                if size == nbytes:
                    del self._free[i]
                else:
                    self._free[i] = (start + nbytes, size - nbytes)
                return start
        return None

    def _give_back(self, start: int, nbytes: int) -> None:
        i = bisect.bisect(self._free, (start, 0))
        if i < len(self._free) and start + nbytes == self._free[i][0]:  # merge with the range after
            nbytes += self._free.pop(i)[1]
        if i > 0 and sum(self._free[i - 1]) == start:  # merge with the range before
            start, nbytes = self._free[i - 1][0], self._free[i - 1][1] + nbytes
            i -= 1
            del self._free[i]
        self._free.insert(i, (start, nbytes))

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    @property
    def held_tokens(self) -> int:
        return self._held_bytes // self.layout.bytes_per_token

    @property
    def capacity_tokens(self) -> int:
        return self.capacity_bytes // self.layout.bytes_per_token

    def __len__(self) -> int:
        return len(self._entries)
