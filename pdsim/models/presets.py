"""Named model presets that pdsim generates itself: Llama-architecture, random weights from a fixed seed.

A preset is created on first use under the models directory, saved with `save_pretrained`, and from then on
loaded through the same `from_pretrained` path as any other checkpoint. A stamp file records the preset's format
and parameters; a directory whose stamp differs (an older pdsim wrote it) is regenerated, never silently reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from pdsim.core.preset_shapes import PRESETS, Preset

MODELS_DIR_ENV = "PDSIM_MODELS_DIR"
__all__ = ["PRESETS", "Preset", "default_models_dir", "ensure_preset", "is_preset"]
# Bump when what a preset directory holds changes (tokenizer, generation config, weights): cached copies of an
# older format are regenerated. 2: generation suppresses every token that is not one printable character.
PRESET_FORMAT = 2
STAMP_FILE = "pdsim_preset.json"


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
    stamp = _stamp(PRESETS[name])
    if _read_stamp(target) == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a private directory and rename into place: concurrent creators never see half a model. A stale
    # directory is moved aside first (rename is atomic; a reader holding files open keeps them).
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=target.parent))
    try:
        _write_preset(PRESETS[name], staging)
        (staging / STAMP_FILE).write_text(json.dumps(stamp, sort_keys=True) + "\n")
        if target.exists() and _read_stamp(target) != stamp:
            with contextlib.suppress(OSError):  # another process replaced it first
                target.rename(stale / name)
        try:
            staging.rename(target)
        except OSError:
            if _read_stamp(target) != stamp:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
    return target


def _stamp(preset: Preset) -> dict[str, object]:
    return {"format": PRESET_FORMAT, "preset": asdict(preset)}


def _read_stamp(directory: Path) -> object:
    """The stamp a preset directory holds, or None when it has none (or no model)."""
    if not (directory / "config.json").is_file():
        return None
    try:
        return json.loads((directory / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_preset(preset: Preset, directory: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from pdsim.models.byte_tokenizer import VOCAB_SIZE, build_byte_tokenizer, suppressed_token_ids

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
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=suppressed_token_ids(tokenizer.eos_token_id),
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
