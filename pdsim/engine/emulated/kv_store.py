"""An emulated device's KV store: it counts tokens and holds no cache.

Its capacity in tokens is what the profile's memory leaves after the weights and the reserve
(`pdsim.core.emulation.capacity`), so the running batch admits only what fits the real device (see
`RunningBatch.has_room`). A push of its KV carries a stand-in of one element per token and layer instead of the
cache (`STAND_IN`): the KV protocol (header, chunks, checksums, leases, refusals) runs for real on a few bytes,
and the link model (`pdsim.kv.link`) times the transfer by the real cache's size.
"""

from __future__ import annotations

from pdsim.core.kv_layout import KvLayout
from pdsim.engine.step import StagedKv


def stand_in_layout(layout: KvLayout) -> KvLayout:
    """What an emulated push carries per token: one key and one value element of one head of one layer."""
    return KvLayout(num_layers=1, num_kv_heads=1, head_dim=1, dtype=layout.dtype)


class AccountingKvStore:
    def __init__(self, layout: KvLayout, num_slots: int, max_tokens: int, capacity_tokens: int) -> None:
        if num_slots <= 0 or max_tokens <= 0 or capacity_tokens <= 0:
            raise ValueError(f"KV store needs slots, max_tokens and capacity > 0, got {num_slots}, {max_tokens}, "
                             f"{capacity_tokens}")  # fmt: skip
        self.layout = layout
        self.num_slots = num_slots
        self.max_tokens = max_tokens
        self._capacity_tokens = min(capacity_tokens, num_slots * max_tokens)
        self._wire = stand_in_layout(layout)

    @property
    def capacity_tokens(self) -> int:
        return self._capacity_tokens

    @property
    def capacity_bytes(self) -> int:
        return self._capacity_tokens * self.layout.bytes_per_token

    @property
    def wire_layout(self) -> KvLayout:
        return self._wire

    def move(self, src: int, dst: int, num_tokens: int) -> None:
        """Nothing to copy: the store holds no cache."""

    def host_segments(self, slot: int, layer: int, num_tokens: int) -> list[memoryview]:
        """The stand-in's blocks: zeros, one element per token for the key and the value."""
        block = bytes(num_tokens * self._wire.head_dim * self._wire.element_bytes)
        return [memoryview(block), memoryview(block)]

    def write_staged(self, slot: int, staged: StagedKv) -> None:
        """The stand-in arrived checked; there is no cache to write it into."""
