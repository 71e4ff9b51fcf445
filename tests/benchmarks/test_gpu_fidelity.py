"""The GPU check's path, tried on this CPU with the tiny preset, and its GPU-name -> profile table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.gpu_fidelity.devices import profile_for_gpu
from benchmarks.gpu_fidelity.main import main


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA B200", "b200"),
        ("AMD Instinct MI300X", "mi300x"),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_a_gpus_name_picks_its_profile(name: str, profile: str | None) -> None:
    assert profile_for_gpu(name) == profile


def test_the_check_runs_on_a_cpu_and_reports_each_steps_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "fidelity.json"
    assert main(["--device", "cpu", "--model", "tiny", "--dtype", "float32", "--profile", "h100-sxm", "--quick",
                 "--repeats", "1", "--output", str(output)]) == 0  # fmt: skip
    results = json.loads(output.read_text())
    assert results["profile"] == "h100-sxm" and len(results["steps"]) == 4
    for step in results["steps"]:
        assert step["measured_s"] > 0
        assert step["error"] == pytest.approx((step["predicted_s"] - step["measured_s"]) / step["measured_s"])
    assert "median |error|" in capsys.readouterr().out


def test_without_a_gpu_it_says_so() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit, match="no CUDA device here"):
        main(["--device", "cuda", "--quick"])
