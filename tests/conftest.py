from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdsim.models.presets import MODELS_DIR_ENV, ensure_preset


@pytest.fixture(scope="session", autouse=True)
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Presets are generated once per test session into a private directory (subprocesses inherit it)."""
    directory = tmp_path_factory.mktemp("models")
    previous = os.environ.get(MODELS_DIR_ENV)
    os.environ[MODELS_DIR_ENV] = str(directory)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ensure_preset("tiny")
    yield directory
    if previous is None:
        del os.environ[MODELS_DIR_ENV]
    else:
        os.environ[MODELS_DIR_ENV] = previous
