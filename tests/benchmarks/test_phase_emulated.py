"""The phase benchmark on an emulated device: predicted points on the profile's roofs, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.step_time import decode_step


def test_an_emulated_phase_run_predicts_each_point_and_draws_the_roofline(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from benchmarks.phases.main import main\n"
        f"main(['--emulate', 'emulated:h100-sxm', '--model', 'llama-3.1-8b', '--dtype', 'bfloat16',"
        f" '--batches', '1,64', '--contexts', '1024', '--prefill-batches', '1', '--prefill-lengths', '2048',"
        f" '--requests', '4', '--input-tokens', '64', '--output-tokens', '4', '--out', {str(tmp_path)!r}])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().endswith("[]"), done.stdout + done.stderr  # no torch
    results = json.loads((tmp_path / "results.json").read_text())
    point = next(p for p in results["decode"] if p["batch"] == 1 and p["context"] == 1024)
    expected = decode_step(load_profile("h100-sxm"), load_model_config("llama-3.1-8b").shape, [1024], "bfloat16")
    assert point["step_s"] == pytest.approx(expected.seconds)
    assert (tmp_path / "roofline.png").stat().st_size > 10_000
