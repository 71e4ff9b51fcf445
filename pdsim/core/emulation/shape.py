"""The dimensions of a decoder-only transformer that decide its costs, read from a Hugging Face config.

Knows nothing about hardware or timing: only how many weights a token multiplies, how many are read, how many
are stored, and how many KV elements a token keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelShape:
    """A Llama-like model: q, k, v, o projections, a gated MLP of three matrices, two norms a layer.

    Biases (Qwen2.5 has them on q, k and v) are left out: they are ~0.01% of the weights.
    """

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False  # the LM head reuses the embedding table: one fewer vocab x hidden stored

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """From a Hugging Face config (`config.json` or `config.to_dict()`) of a Llama-like model."""
        try:
            heads = int(config["num_attention_heads"])
            return cls(
                hidden=int(config["hidden_size"]),
                layers=int(config["num_hidden_layers"]),
                heads=heads,
                kv_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
                intermediate=int(config["intermediate_size"]),
                vocab=int(config["vocab_size"]),
                # Llama, Mistral and Qwen2 configs default to untied when the key is absent.
                tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            )
        except KeyError as missing:
            raise ValueError(f"the model config has no {missing.args[0]!r}: is it a decoder-only LM?") from None

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
    def stored_params(self) -> int:
        """Every weight held in memory: what is read per forward plus the embedding table, unless it is tied."""
        return self.read_params + (0 if self.tied_embeddings else self.vocab * self.hidden)

    @property
    def kv_elements_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim

    def check_tensor_parallel(self, tp: int) -> int:
        """`tp` if this model splits evenly over `tp` ranks: whole query and KV heads on each (no KV replication)."""
        if tp < 1:
            raise ValueError(f"tp must be >= 1, got {tp}")
        if self.heads % tp or self.kv_heads % tp:
            raise ValueError(
                f"tp ({tp}) must divide the attention heads ({self.heads}) and the KV heads ({self.kv_heads})"
            )
        return tp
