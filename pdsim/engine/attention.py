"""pdsim's attention, registered with transformers so that any model using its attention interface runs on
pdsim's KV store.

The model runner passes a `KvStep` through the model's forward kwargs; each attention layer writes the new
tokens' keys and values (already rotated) into the store in place, then attends:
- prefill: rows are right-padded prompts, so plain causal attention over the new tokens is exact for every
  real token; padding positions land in the slot but are never read.
- decode: row b sits in slot b; attention reads views of slots 0..B-1 up to the longest context, masked to
  each row's own length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pdsim.engine.kv_store import SlotKvStore

ATTENTION_NAME = "pdsim"


@dataclass(frozen=True, slots=True)
class KvStep:
    store: SlotKvStore
    decode: bool
    slots: torch.Tensor  # prefill: the slot of each row; decode: arange(B)
    positions: torch.Tensor | None = None  # decode: where each row's new token goes, [B]
    kv_len: int = 0  # decode: keys to attend over (the longest row's length)
    mask: torch.Tensor | None = None  # decode: [B, 1, 1, kv_len] True where a row may attend; None if all may


def pdsim_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    pdsim_step: KvStep | None = None,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    if pdsim_step is None:
        raise RuntimeError("pdsim attention needs a KvStep: run the model through pdsim's model runner")
    layer: int = module.layer_idx  # type: ignore[assignment]
    store_keys, store_values = pdsim_step.store.keys[layer], pdsim_step.store.values[layer]
    if pdsim_step.decode:
        rows, positions = pdsim_step.slots, pdsim_step.positions
        store_keys[rows, :, positions] = key[:, :, 0]
        store_values[rows, :, positions] = value[:, :, 0]
        batch, kv_len = query.shape[0], pdsim_step.kv_len
        out = F.scaled_dot_product_attention(
            query,
            store_keys[:batch, :, :kv_len],
            store_values[:batch, :, :kv_len],
            attn_mask=pdsim_step.mask,
            scale=scaling,
            enable_gqa=True,
        )
    else:
        length = key.shape[2]
        store_keys[pdsim_step.slots, :, :length] = key
        store_values[pdsim_step.slots, :, :length] = value
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make `attn_implementation="pdsim"` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, pdsim_attention)
