from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdsim.models.byte_tokenizer import VOCAB_SIZE, suppressed_token_ids
from pdsim.models.presets import MODELS_DIR_ENV, PRESET_FORMAT, STAMP_FILE, default_models_dir, ensure_preset
from router.detokenizer import RouterTokenizer


def test_an_empty_models_dir_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, "")
    assert default_models_dir() == Path.home() / ".cache" / "pdsim" / "models"  # never the working directory


def test_unknown_presets_are_named() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'huge'; presets: small, tiny"):
        ensure_preset("huge")


def test_a_preset_with_a_stale_stamp_is_regenerated(tmp_path: Path) -> None:
    directory = ensure_preset("tiny", tmp_path)
    generation = json.loads((directory / "generation_config.json").read_text())
    assert generation["suppress_tokens"] == suppressed_token_ids(generation["eos_token_id"])
    tokenizer = RouterTokenizer(directory)
    allowed = [
        i for i in range(VOCAB_SIZE) if i not in generation["suppress_tokens"] and i != generation["eos_token_id"]
    ]
    assert all(len(tokenizer.decode([i])) == 1 and tokenizer.decode([i]).isprintable() for i in allowed)
    assert all(tokenizer.encode(tokenizer.decode([i]), add_special_tokens=False) == [i] for i in allowed)
    (directory / STAMP_FILE).unlink()  # as an older pdsim left it
    (directory / "generation_config.json").write_text("{}")
    assert ensure_preset("tiny", tmp_path) == directory
    assert json.loads((directory / "generation_config.json").read_text()) == generation
    assert json.loads((directory / STAMP_FILE).read_text())["format"] == PRESET_FORMAT
