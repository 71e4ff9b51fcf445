"""Models without weights: the shipped configs match the published parameter counts; presets and paths load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pdsim.core.emulation.models import load_model_config, model_names
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.preset_shapes import BYTE_VOCAB_SIZE

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "name,params",
    [  # the parameter counts each model card publishes (Mistral 7B v0.3: 7.25B)
        ("llama-3.1-8b", 8.03e9),
        ("llama-3.1-70b", 70.6e9),
        ("qwen2.5-7b", 7.61e9),
        ("qwen2.5-72b", 72.7e9),
        ("mistral-7b", 7.25e9),
    ],
)
def test_shipped_configs_have_the_published_sizes(name: str, params: float) -> None:
    assert load_model_config(name).shape.stored_params == pytest.approx(params, rel=0.005)


def test_llama_3_1_8b_exactly() -> None:
    config = load_model_config("llama-3.1-8b")
    assert config.shape == ModelShape(4096, 32, 32, 8, 128, 14336, 128256, tied_embeddings=False)
    assert config.shape.stored_params == 8_030_261_248  # bf16: 16.06 GB, the seed's "16 GB of weights"
    assert config.max_context == 131072


def test_presets_read_without_torch() -> None:
    tiny = load_model_config("tiny")
    assert tiny.shape == ModelShape(64, 2, 4, 2, 16, 176, BYTE_VOCAB_SIZE)
    assert {"tiny", "small", "llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "qwen2.5-72b", "mistral-7b"} <= set(
        model_names()
    )


def test_the_byte_tokenizer_and_the_presets_share_one_vocab_size() -> None:
    from pdsim.models.byte_tokenizer import VOCAB_SIZE

    assert VOCAB_SIZE == BYTE_VOCAB_SIZE == 259


def test_a_local_config_by_file_or_directory(tmp_path: Path) -> None:
    config = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512,
              "tie_word_embeddings": True}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    by_dir, by_file = load_model_config(str(tmp_path)), load_model_config(str(tmp_path / "config.json"))
    assert by_dir.shape == by_file.shape == ModelShape(64, 2, 4, 2, 16, 128, 256, tied_embeddings=True)
    assert by_dir.shape.stored_params == by_dir.shape.read_params  # tied: the LM head is the embedding table
    assert by_dir.max_context == 512


def test_unknown_models_and_bad_configs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model 'llama-9'"):
        load_model_config("llama-9")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(ValueError, match="the model config has no 'num_attention_heads'"):
        load_model_config(str(tmp_path))


def test_the_cost_model_and_the_calculator_import_no_torch() -> None:
    modules = "pdsim.core.emulation.step_time, pdsim.core.emulation.capacity, pdsim.core.emulation.models"
    code = f"import sys, {modules}, apps.estimate, apps.hardware; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
