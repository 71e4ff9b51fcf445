"""The FLOP and byte model of one forward pass, from a model's config alone (torch-free).

What one prefill (`batch` prompts of `length` tokens) or one decode step (`batch` rows, each with `context`
tokens already cached) costs, counted the way the roofline needs it. Assumptions, chosen to match what pdsim's
model runner does:

- 2 FLOPs per multiply-accumulate. Only matmuls are counted: the linear layers (q, k, v, o and a gated MLP of
  three matrices, no biases, as in Llama) and attention's QK^T and AV. Norms, RoPE, softmax and activations are
  elementwise and left out.
- Attention is causal: in a prefill, token i attends to i + 1 keys (the useful work, T(T+1)/2 pairs per row);
  in a decode step the new token attends to `context + 1` keys (the cache plus itself).
- The LM head runs on one position per row in both phases (the runner samples only each row's last token).
- Bytes are what must cross the memory bus at least once per forward: every weight read once (the linear
  layers, norms and LM head; of the embedding table only the rows looked up), the new tokens' keys and values
  written once, and in a decode step every cached key and value read once. Activations are assumed to stay in
  cache and are not counted, so the arithmetic intensity here is an upper bound for long prefills.
- Weights and KV are stored in the run's dtype.

With short contexts a decode step's FLOPs are ~2 x params x batch and its bytes ~params x element size, so its
arithmetic intensity is ~batch (bf16) or ~batch / 2 (fp32); a prefill's is ~batch x length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdsim.core.kv_layout import DTYPE_BYTES, check_dtype_name


@dataclass(frozen=True, slots=True)
class ModelShape:
    """The dimensions that decide a decoder-only transformer's costs."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """From a Hugging Face config (`config.json` or `config.to_dict()`) of a Llama-like model."""
        heads = int(config["num_attention_heads"])
        return cls(
            hidden=int(config["hidden_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
            intermediate=int(config["intermediate_size"]),
            vocab=int(config["vocab_size"]),
        )

    @property
    def layer_matmul_params(self) -> int:
        """Weights of one layer's matmuls: q and o (heads), k and v (KV heads), the gated MLP (3 matrices)."""
        attention = self.hidden * self.head_dim * (2 * self.heads + 2 * self.kv_heads)
        return attention + 3 * self.hidden * self.intermediate

    @property
    def matmul_params(self) -> int:
        """Every weight a token multiplies: all layers plus the LM head (the embedding is a lookup)."""
        return self.layers * self.layer_matmul_params + self.vocab * self.hidden

    @property
    def read_params(self) -> int:
        """Weights read once per forward besides the embedding rows: matmuls, two norms a layer, the final norm."""
        return self.matmul_params + (2 * self.layers + 1) * self.hidden

    @property
    def kv_elements_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim


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


def prefill_cost(shape: ModelShape, batch: int, length: int, dtype: str) -> Cost:
    """One prefill forward of `batch` prompts of `length` tokens each."""
    _check_positive(batch=batch, length=length)
    element = DTYPE_BYTES[check_dtype_name(dtype)]
    tokens = batch * length
    attended_pairs = batch * length * (length + 1) // 2  # causal: token i sees i + 1 keys
    return Cost(
        linear_flops=2 * tokens * shape.layers * shape.layer_matmul_params,
        attention_flops=_attention_flops(shape, attended_pairs),
        head_flops=2 * batch * shape.hidden * shape.vocab,
        weight_bytes=(shape.read_params + tokens * shape.hidden) * element,
        kv_read_bytes=0,  # a prefill attends over the keys it just computed, not over the cache
        kv_write_bytes=tokens * shape.kv_elements_per_token * element,
    )


def decode_cost(shape: ModelShape, batch: int, context: int, dtype: str) -> Cost:
    """One decode step of `batch` rows, each with `context` tokens cached before the step."""
    _check_positive(batch=batch)
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    element = DTYPE_BYTES[check_dtype_name(dtype)]
    keys = context + 1  # the cache plus the new token's own key
    return Cost(
        linear_flops=2 * batch * shape.layers * shape.layer_matmul_params,
        attention_flops=_attention_flops(shape, batch * keys),
        head_flops=2 * batch * shape.hidden * shape.vocab,
        weight_bytes=(shape.read_params + batch * shape.hidden) * element,
        kv_read_bytes=batch * keys * shape.kv_elements_per_token * element,
        kv_write_bytes=batch * shape.kv_elements_per_token * element,
    )


def _attention_flops(shape: ModelShape, query_key_pairs: int) -> int:
    # Per layer, query head and (query, key) pair: head_dim MACs for QK^T and head_dim for AV.
    return 2 * 2 * shape.head_dim * shape.heads * shape.layers * query_key_pairs


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
