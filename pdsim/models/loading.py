"""Load a causal LM and its facts (limits, EOS ids, KV layout, fingerprint) from a preset name or a local path.

Nothing is downloaded: a name that is not a preset must be a local Hugging Face checkpoint directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import ModelLimits
from pdsim.models.dtypes import dtype_name, torch_dtype
from pdsim.models.info import ModelInfo
from pdsim.models.presets import ensure_preset, is_preset
from pdsim.models.spec import ModelSpec

# Config keys that describe how a model was saved or loaded, not what it computes.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "dtype", "torch_dtype", "use_cache", "output_attentions"}


def resolve_model_path(model: str) -> Path:
    if is_preset(model):
        return ensure_preset(model)
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(f"model {model!r} is neither a preset nor a local checkpoint directory with config.json")
    return path


def model_fingerprint(config: dict[str, Any], dtype: torch.dtype) -> str:
    """A short hash of what decides the KV cache's contents and shape: the model's config and the dtype."""
    stable = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS and not k.startswith("_")}
    blob = json.dumps(stable, sort_keys=True, default=str) + "|" + dtype_name(dtype)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_model(spec: ModelSpec, attn_implementation: str | None = None) -> tuple[torch.nn.Module, ModelInfo]:
    """Load the model and describe it. The engine names its own attention (`pdsim.engine.build.load_engine_model`);
    None keeps transformers' default."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    path = resolve_model_path(spec.model)
    dtype = torch_dtype(spec.dtype)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
    model.to(spec.device)
    model.eval()
    return model, describe_model(model, path, dtype, spec.max_context)


def describe_model(model: torch.nn.Module, path: Path, dtype: torch.dtype, max_context: int | None) -> ModelInfo:
    config: Any = model.config  # a transformers PretrainedConfig; its fields depend on the architecture
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        raise ValueError(f"{path}: sliding-window attention is not supported by pdsim's KV store")
    context = int(config.max_position_embeddings)
    if max_context is not None:
        context = min(context, max_context)
    generation = getattr(model, "generation_config", None)
    eos = getattr(generation, "eos_token_id", None) or config.eos_token_id
    eos_ids = frozenset([eos] if isinstance(eos, int) else (eos or []))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layout = KvLayout(
        num_layers=config.num_hidden_layers,
        num_kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        head_dim=head_dim,
        dtype=dtype_name(dtype),
    )
    return ModelInfo(
        name=path.name,
        path=path,
        fingerprint=model_fingerprint(config.to_dict(), dtype),
        limits=ModelLimits(max_context=context, vocab_size=config.vocab_size),
        eos_token_ids=eos_ids,
        layout=layout,
        suppress_token_ids=frozenset(getattr(generation, "suppress_tokens", None) or ()),
    )
