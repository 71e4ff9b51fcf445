"""Models without weights: the configs emulation runs from, by name or by path.

Three kinds of name resolve here: pdsim's presets (`tiny`, `small`, from `pdsim.core.preset_shapes`), the configs
shipped with this package (`configs/<name>.json`, Hugging Face `config.json` files written from each model's
published architecture), and any local `config.json`, or a checkpoint directory holding one. Only the shape is
read; no weights, tokenizer or transformers are needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pdsim.core.emulation.shape import ModelShape
from pdsim.core.preset_shapes import PRESETS


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    shape: ModelShape
    max_context: int
    source: str  # where the numbers come from

    def __post_init__(self) -> None:
        if self.max_context < 1:
            raise ValueError(f"{self.name}: max_context must be >= 1, got {self.max_context}")


def shipped_model_names() -> list[str]:
    folder = resources.files(__package__).joinpath("configs")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


def model_names() -> list[str]:
    """Every model known by name: the presets, then the shipped configs."""
    return [*sorted(PRESETS), *shipped_model_names()]


def load_model_config(model: str) -> ModelConfig:
    """A preset, a shipped config by name, or a local `config.json` (or a directory holding one) by path."""
    if model in PRESETS:
        return config_from_dict(model, PRESETS[model].hf_config(), "pdsim preset (pdsim/core/preset_shapes.py)")
    if model in shipped_model_names():
        data = json.loads(resources.files(__package__).joinpath("configs", f"{model}.json").read_text())
        return config_from_dict(model, data, str(data.get("pdsim_source", "shipped config")))
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"unknown model {model!r}: not one of {', '.join(model_names())}, nor a config.json path")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    return config_from_dict(model, data, str(path))


def config_from_dict(name: str, data: Mapping[str, Any], source: str) -> ModelConfig:
    shape = ModelShape.from_config(data)
    # Some configs (Llama 3.1's) lift a longer window with rope_scaling; max_position_embeddings already states it.
    return ModelConfig(name, shape, int(data.get("max_position_embeddings") or 0) or 1, source)
