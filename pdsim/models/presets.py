"""Named model presets that pdsim generates itself: Llama-architecture, random weights from a fixed seed.

A preset is created on first use under the models directory, saved with `save_pretrained`, and from then on
loaded through the same `from_pretrained` path as any other checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pdsim.core.preset_shapes import PRESETS, Preset

MODELS_DIR_ENV = "PDSIM_MODELS_DIR"
__all__ = ["PRESETS", "Preset", "default_models_dir", "ensure_preset", "is_preset"]


def default_models_dir() -> Path:
    """$PDSIM_MODELS_DIR (an empty value counts as unset), else ~/.cache/pdsim/models."""
    return Path(os.environ.get(MODELS_DIR_ENV) or Path.home() / ".cache" / "pdsim" / "models")


def is_preset(name: str) -> bool:
    return name in PRESETS


def ensure_preset(name: str, models_dir: Path | None = None) -> Path:
    """Return the directory of preset `name`, creating it first if needed (safe across processes)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    target = (models_dir or default_models_dir()) / name
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename into place: concurrent creators never see half a model.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _write_preset(PRESETS[name], staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_preset(preset: Preset, directory: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from pdsim.models.byte_tokenizer import VOCAB_SIZE, build_byte_tokenizer

    tokenizer = build_byte_tokenizer()
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_layers,
        num_attention_heads=preset.num_heads,
        num_key_value_heads=preset.num_kv_heads,
        max_position_embeddings=preset.max_context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(preset.seed)
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
