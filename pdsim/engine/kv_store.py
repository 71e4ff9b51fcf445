"""The KV store: per-layer key and value tensors allocated once, `[slots, kv_heads, max_tokens, head_dim]`.

A request owns one slot while it runs. Tokens are written in place (by `pdsim.engine.attention`); nothing is
ever concatenated. Rows of the running decode batch are kept in slots 0..B-1 so that attention reads plain
views of the store; moving a request between slots copies only that request's tokens.
"""

from __future__ import annotations

import torch

from pdsim.core.kv_layout import KvLayout
from pdsim.engine.step import StagedKv
from pdsim.models.dtypes import torch_dtype


class SlotKvStore:
    def __init__(self, layout: KvLayout, num_slots: int, max_tokens: int, device: str | torch.device) -> None:
        if num_slots <= 0 or max_tokens <= 0:
            raise ValueError(f"KV store needs slots > 0 and max_tokens > 0, got {num_slots} and {max_tokens}")
        self.layout = layout
        self.num_slots = num_slots
        self.max_tokens = max_tokens
        dtype = torch_dtype(layout.dtype)
        shape = (num_slots, layout.num_kv_heads, max_tokens, layout.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layout.num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layout.num_layers)]

    @staticmethod
    def bytes_for(layout: KvLayout, num_slots: int, max_tokens: int) -> int:
        """What a store of this shape allocates: known before allocating, to refuse one that cannot fit."""
        return num_slots * max_tokens * layout.bytes_per_token

    @property
    def capacity_bytes(self) -> int:
        return self.bytes_for(self.layout, self.num_slots, self.max_tokens)

    @property
    def capacity_tokens(self) -> int:
        return self.num_slots * self.max_tokens

    @property
    def wire_layout(self) -> KvLayout:
        return self.layout

    def move(self, src: int, dst: int, num_tokens: int) -> None:
        """Copy a request's first `num_tokens` tokens from slot `src` to slot `dst`."""
        for keys, values in zip(self.keys, self.values, strict=True):
            keys[dst, :, :num_tokens].copy_(keys[src, :, :num_tokens])
            values[dst, :, :num_tokens].copy_(values[src, :, :num_tokens])

    def host_segments(self, slot: int, layer: int, num_tokens: int) -> list[memoryview]:
        """One layer of a slot as its 2 x kv_heads `[tokens, head_dim]` blocks of bytes, keys first.

        On the CPU these are views of the store itself (nothing is copied); elsewhere the layer is copied to
        host memory first. Valid while the slot is held.
        """
        keys, values = self.keys[layer][slot, :, :num_tokens], self.values[layer][slot, :, :num_tokens]
        if keys.device.type != "cpu":
            keys, values = keys.cpu(), values.cpu()
        return [_bytes_view(block[head]) for block in (keys, values) for head in range(block.shape[0])]

    def write_staged(self, slot: int, staged: StagedKv) -> None:
        self.write_block(slot, staged_tensor(staged))

    def write_block(self, slot: int, block: torch.Tensor) -> None:
        """Write a whole request, `[layers, 2, kv_heads, tokens, head_dim]`, into a slot."""
        num_tokens = block.shape[3]
        if num_tokens > self.max_tokens:
            raise ValueError(f"{num_tokens} tokens do not fit a slot of {self.max_tokens}")
        for layer, (keys, values) in enumerate(zip(self.keys, self.values, strict=True)):
            # Blocking: the caller frees `block`'s memory right after.
            keys[slot, :, :num_tokens].copy_(block[layer, 0])
            values[slot, :, :num_tokens].copy_(block[layer, 1])


def staged_tensor(staged: StagedKv) -> torch.Tensor:
    """Staged KV's bytes as `[layers, 2, kv_heads, tokens, head_dim]`, without a copy."""
    layout = staged.layout
    shape = (layout.num_layers, 2, layout.num_kv_heads, staged.num_tokens, layout.head_dim)
    return torch.frombuffer(staged.buffer, dtype=torch.uint8).view(torch_dtype(layout.dtype)).view(shape)


def _bytes_view(tensor: torch.Tensor) -> memoryview:
    assert tensor.is_contiguous()
    return tensor.view(torch.uint8).numpy().data.cast("B")
