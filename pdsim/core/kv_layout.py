"""The shape of a model's KV cache, and the dtype names used on the wire and on the command line.

Torch-free: the codec and the router's imports must not pull torch in.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def check_dtype_name(name: str) -> str:
    if name not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class KvLayout:
    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: str

    @property
    def element_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def bytes_per_token(self) -> int:
        """Keys and values of one token across all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.element_bytes

    def layer_bytes(self, num_tokens: int) -> int:
        """One layer's keys then values for `num_tokens` tokens: the unit the codec sends."""
        return 2 * self.num_kv_heads * num_tokens * self.head_dim * self.element_bytes
