"""Decode-side staging: KV pushed by a prefill node, held under a lease until a Decode claims it.

Each request's buffer is allocated from its header before any chunk arrives and receives the chunks in
place; joining the running batch copies it into a KV slot once. Thread-safe: the node's event loop pushes
and claims, the engine thread releases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import torch

from pdsim.engine.dtypes import torch_dtype
from pdsim.errors import InvalidRequest, NotFound, ResourceExhausted
from pdsim.kv_layout import KvLayout


class StagedEntry:
    def __init__(self, staging: KvStaging, request_id: str, layout: KvLayout, num_tokens: int) -> None:
        self._staging = staging
        self.request_id = request_id
        self.layout = layout
        self.num_tokens = num_tokens
        self.buffer = bytearray(num_tokens * layout.bytes_per_token)
        self.expires_at: float | None = None  # set when complete; None again once claimed

    @property
    def nbytes(self) -> int:
        return len(self.buffer)

    def tensor(self) -> torch.Tensor:
        layout = self.layout
        shape = (layout.num_layers, 2, layout.num_kv_heads, self.num_tokens, layout.head_dim)
        return torch.frombuffer(self.buffer, dtype=torch.uint8).view(torch_dtype(layout.dtype)).view(shape)

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
        self._held_bytes = 0

    def reserve(self, request_id: str, num_tokens: int) -> StagedEntry:
        nbytes = num_tokens * self.layout.bytes_per_token
        with self._lock:
            if request_id in self._entries:
                raise InvalidRequest(f"KV for request {request_id!r} is already held on this node")
            if self._held_bytes + nbytes > self.capacity_bytes:
                raise ResourceExhausted(
                    f"no room for {nbytes} bytes of KV: {self._held_bytes} of {self.capacity_bytes} held"
                )
            entry = StagedEntry(self, request_id, self.layout, num_tokens)
            self._entries[request_id] = entry
            self._held_bytes += nbytes
            return entry

    def commit(self, entry: StagedEntry) -> None:
        """All chunks are in: the lease starts."""
        with self._lock:
            entry.expires_at = self._clock() + self.lease_seconds

    def claim(self, request_id: str) -> StagedEntry:
        """Hand complete KV to a Decode; from then on only `release` frees it."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None or entry.expires_at is None:
                state = "is still arriving" if entry is not None else "is unknown or its lease expired"
                raise NotFound(f"no KV to decode for request {request_id!r}: it {state}")
            entry.expires_at = None
            return entry

    def release(self, entry: StagedEntry) -> None:
        with self._lock:
            if self._entries.get(entry.request_id) is entry:
                del self._entries[entry.request_id]
                self._held_bytes -= entry.nbytes

    def expire(self) -> list[str]:
        """Free KV whose lease ended; returns their request ids."""
        now = self._clock()
        with self._lock:
            expired = [e for e in self._entries.values() if e.expires_at is not None and e.expires_at <= now]
            for entry in expired:
                del self._entries[entry.request_id]
                self._held_bytes -= entry.nbytes
        return [e.request_id for e in expired]

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def __len__(self) -> int:
        return len(self._entries)
