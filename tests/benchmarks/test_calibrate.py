"""`pdsim calibrate` on this CPU: the command end to end on the tiny preset (fast), and the acceptance check on
the `small` preset (slow): held-out steps predicted with median |error| <= 10% and p90 <= 25%."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.calibrate.config import CalibrateConfig
from benchmarks.calibrate.main import run_calibrate
from pdsim.core.emulation.fit import error_summary
from pdsim.core.emulation.hardware import load_profile
from pdsim.models.spec import ModelSpec


def test_calibrate_writes_a_profile_that_emulated_nodes_load(tmp_path: Path) -> None:
    output = tmp_path / "cpu-tiny.toml"
    done = subprocess.run(
        [sys.executable, "-m", "apps", "calibrate", "--model", "tiny", "--dtype", "float32", "--quick",
         "--repeats", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "held-out steps: median |error|" in done.stdout, done.stdout + done.stderr
    profile = load_profile(str(output))
    assert "measured by pdsim calibrate" in profile.memory_bandwidth.source
    assert "fitted by pdsim calibrate" in profile.flop_efficiency.source
    assert 0 < profile.flop_efficiency.value <= 1 and profile.step_overhead_s.value >= 0
    ModelSpec("tiny", f"emulated:{output}", "float32")  # an emulated node takes it as its device


def test_calibrate_refuses_an_emulated_device() -> None:
    with pytest.raises(ValueError, match="calibrate measures a real device, not emulated:h100-sxm"):
        CalibrateConfig(model=ModelSpec("llama-3.1-8b", "emulated:h100-sxm", "bfloat16"))


@pytest.mark.slow
def test_the_small_presets_fitted_profile_predicts_held_out_steps(tmp_path: Path) -> None:
    calibration = run_calibrate(CalibrateConfig(output=tmp_path / "cpu-small.toml"), log=lambda _: None)
    median, p90 = error_summary(calibration.errors(calibration.held_out))
    assert median <= 0.10 and p90 <= 0.25, (median, p90)
