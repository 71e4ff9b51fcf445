"""The numbers of the model presets pdsim generates itself, and of the byte vocabulary they use.

Torch-free, so the cost model can read a preset's shape without loading transformers; building a preset's weights
(`pdsim.models.presets`) and its tokenizer (`pdsim.models.byte_tokenizer`) read these same constants.
"""

from __future__ import annotations

from dataclasses import dataclass

NUM_BYTE_TOKENS = 256
BYTE_VOCAB_SIZE = NUM_BYTE_TOKENS + 3  # byte b has id b; BOS, EOS and PAD follow


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_context: int
    seed: int

    def hf_config(self) -> dict[str, object]:
        """The architecture numbers as a Hugging Face Llama config would write them (no token ids)."""
        return {
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.hidden_size // self.num_heads,
            "intermediate_size": self.intermediate_size,
            "vocab_size": BYTE_VOCAB_SIZE,
            "max_position_embeddings": self.max_context,
            "tie_word_embeddings": False,
        }


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # ~0.1M parameters, for tests.
        Preset("tiny", 64, 2, 4, 2, 176, 1024, seed=1234),
        # ~24M parameters: on one core a 2,000-token prefill costs ~75 decode steps (fp32), ~24 (bf16).
        Preset("small", 512, 8, 8, 4, 1408, 4096, seed=1234),
    )
}
