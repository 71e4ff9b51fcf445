"""The FLOP and byte count of one forward pass over a batch of sequences, from a model's shape alone.

A forward runs `Segment`s: each sequence brings some new tokens and has some tokens cached before the step. A
prefill is segments with nothing cached, a decode step segments of one new token, a chunked (mixed) step any mix.
Counted the way the roofline needs it, with assumptions chosen to match what pdsim's model runner does:

- 2 FLOPs per multiply-accumulate. Only matmuls are counted: the linear layers (q, k, v, o and a gated MLP of
  three matrices, no biases, as in Llama) and attention's QK^T and AV. Norms, RoPE, softmax and activations are
  elementwise and left out.
- Attention is causal: new token i of a segment with c cached tokens attends to c + i keys, so a prompt of T
  tokens does T(T+1)/2 (query, key) pairs and a decode row with `context` cached does context + 1.
- The LM head runs on one position per segment (the runner samples only each row's last token).
- Bytes are what must cross the memory bus at least once per forward: every weight read once (the linear layers,
  norms and LM head; of the embedding table only the rows looked up), the new tokens' keys and values written once,
  and every cached key and value read once. A single-token row also reads back its own new key and value, as a
  paged decode kernel does (it appends to the cache, then attends over the cache); a multi-token segment attends
  over its own keys while they are still on chip. Activations are assumed to stay in cache and are not counted,
  so the arithmetic intensity here is an upper bound for long prefills.
- Weights and KV are stored in the run's dtype.

With short contexts a decode step's FLOPs are ~2 x params x batch and its bytes ~params x element size, so its
arithmetic intensity is ~batch (bf16) or ~batch / 2 (fp32); a prefill's is ~batch x length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdsim.core.emulation.shape import ModelShape
from pdsim.core.kv_layout import DTYPE_BYTES, check_dtype_name


@dataclass(frozen=True, slots=True)
class Segment:
    """One sequence's share of a forward: `new` tokens computed on top of `cached` tokens already in the KV cache."""

    new: int
    cached: int = 0

    def __post_init__(self) -> None:
        if self.new <= 0:
            raise ValueError(f"a segment's new tokens must be > 0, got {self.new}")
        if self.cached < 0:
            raise ValueError(f"a segment's cached tokens must be >= 0, got {self.cached}")

    @property
    def attended_pairs(self) -> int:
        """(query, key) pairs: new token i (1-based) sees the cache and the first i new tokens."""
        return self.new * self.cached + self.new * (self.new + 1) // 2

    @property
    def keys_read(self) -> int:
        """Cached keys (and values) read from memory; a decode row also reads back the one it just appended."""
        return self.cached + 1 if self.new == 1 else self.cached


@dataclass(frozen=True, slots=True)
class Cost:
    """FLOPs and bytes of one forward pass, itemised."""

    linear_flops: int  # the layers' matmuls
    attention_flops: int  # QK^T and AV
    head_flops: int  # the LM head
    weight_bytes: int
    kv_read_bytes: int
    kv_write_bytes: int

    @property
    def flops(self) -> int:
        return self.linear_flops + self.attention_flops + self.head_flops

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte."""
        return self.flops / self.bytes


def forward_cost(shape: ModelShape, segments: Sequence[Segment], dtype: str) -> Cost:
    """One forward over `segments`, packed (no padding), with every weight read once for the whole batch."""
    if not segments:
        raise ValueError("a forward needs at least one segment, got none")
    element = DTYPE_BYTES[check_dtype_name(dtype)]
    tokens = sum(s.new for s in segments)
    kv = shape.kv_elements_per_token * element
    return Cost(
        linear_flops=2 * tokens * shape.layers * shape.layer_matmul_params,
        attention_flops=_attention_flops(shape, sum(s.attended_pairs for s in segments)),
        head_flops=2 * len(segments) * shape.hidden * shape.vocab,
        weight_bytes=(shape.read_params + tokens * shape.hidden) * element,  # + the embedding rows looked up
        kv_read_bytes=sum(s.keys_read for s in segments) * kv,
        kv_write_bytes=tokens * kv,
    )


def prefill_cost(shape: ModelShape, batch: int, length: int, dtype: str) -> Cost:
    """One prefill forward of `batch` prompts of `length` tokens each."""
    _check_positive(batch=batch, length=length)
    return forward_cost(shape, [Segment(length)] * batch, dtype)


def decode_cost(shape: ModelShape, batch: int, context: int, dtype: str) -> Cost:
    """One decode step of `batch` rows, each with `context` tokens cached before the step."""
    _check_positive(batch=batch)
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    return forward_cost(shape, [Segment(1, context)] * batch, dtype)


def _attention_flops(shape: ModelShape, query_key_pairs: int) -> int:
    # Per layer, query head and (query, key) pair: head_dim MACs for QK^T and head_dim for AV.
    return 2 * 2 * shape.head_dim * shape.heads * shape.layers * query_key_pairs


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
