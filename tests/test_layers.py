"""The architecture is a contract: import-linter's contracts in pyproject.toml (layers, no torch in the router or
the load generator, no grpc in the engine, one prometheus_client module) all hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None, "import-linter is a dev dependency: make venv installs it"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_the_command_line_starts_without_torch() -> None:
    """Parsing flags and starting the router must stay cheap: torch loads only in processes that run a model."""
    code = "import sys, apps.cli, router.server; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
