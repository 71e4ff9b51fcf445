from __future__ import annotations

from pathlib import Path

import pytest

from pdsim.models.presets import MODELS_DIR_ENV, default_models_dir, ensure_preset


def test_an_empty_models_dir_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, "")
    assert default_models_dir() == Path.home() / ".cache" / "pdsim" / "models"  # never the working directory


def test_unknown_presets_are_named() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'huge'; presets: small, tiny"):
        ensure_preset("huge")
