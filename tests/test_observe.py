"""`pdsim observe`'s preparation: the config it hands Prometheus, and a clear refusal when the port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from apps.observe import ObserveConfig, prepare, start_prometheus


def test_the_config_watches_the_launchers_targets_directory(tmp_path: Path) -> None:
    targets = tmp_path / "elsewhere" / "sd"
    config = ObserveConfig(tmp_path / "work", targets, scrape_interval="1s")
    settings = yaml.safe_load(prepare(config).read_text())
    job = settings["scrape_configs"][0]
    assert job["honor_labels"] is True  # the processes' own mode/role/instance labels win
    assert job["file_sd_configs"][0]["files"] == [f"{targets.resolve()}/*.json"]
    assert settings["global"]["scrape_interval"] == "1s" and targets.is_dir()


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is in use"):
            start_prometheus(ObserveConfig(tmp_path, tmp_path / "targets", port=port))
