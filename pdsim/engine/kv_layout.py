"""The shape of a model's KV cache, and the names dtypes go by on the wire and on the command line."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def dtype_from_name(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {name!r}") from None


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}")


@dataclass(frozen=True, slots=True)
class KvLayout:
    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: str

    @property
    def element_bytes(self) -> int:
        return dtype_from_name(self.dtype).itemsize

    @property
    def bytes_per_token(self) -> int:
        """Keys and values of one token across all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.element_bytes

    def layer_bytes(self, num_tokens: int) -> int:
        """One layer's keys then values for `num_tokens` tokens: the unit the codec sends."""
        return 2 * self.num_kv_heads * num_tokens * self.head_dim * self.element_bytes
