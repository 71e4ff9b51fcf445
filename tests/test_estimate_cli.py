"""`pdsim hardware` and `pdsim estimate` as a user runs them: what they print, and how they refuse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from apps.cli import main

ROOT = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(r"tokens/s: (\d+(?:\.\d+)?)")


def _estimate(capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    assert main(["estimate", *flags]) == 0
    return capsys.readouterr().out.splitlines()


def test_the_seed_decode_through_the_real_entry_point() -> None:
    command = [sys.executable, "-m", "apps", "estimate", "--device", "emulated:h100-sxm", "--model", "llama-3.1-8b",
               "--phase", "decode", "--batch", "1", "--context", "1024"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    match = LAST_LINE.fullmatch(lines[-1])
    assert match is not None, lines[-1]
    assert 125 <= float(match.group(1)) <= 167
    assert "step time:   6.758 ms, bound by memory" in lines
    assert "KV capacity: 426,784 tokens" in result.stdout


@pytest.mark.parametrize(
    "flags",
    [
        ("--phase", "prefill", "--prompt", "2048"),
        ("--phase", "mixed", "--batch", "8", "--context", "512", "--prompt", "256", "--prefix", "256"),
        ("--model", "llama-3.1-70b", "--tp", "4", "--batch", "16"),
        ("--device", "emulated:m3-max", "--model", "tiny", "--dtype", "float32", "--context", "100"),
    ],
)
def test_every_phase_ends_with_tokens_per_s(capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]) -> None:
    lines = _estimate(capsys, *flags)
    assert LAST_LINE.fullmatch(lines[-1]), lines[-1]


def test_prefill_on_an_h100_is_compute_bound(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _estimate(capsys, "--phase", "prefill", "--prompt", "2048")
    assert any(line.startswith("step time:") and line.endswith("bound by compute") for line in lines)


def test_tensor_parallel_steps_list_their_all_reduces(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _estimate(capsys, "--model", "llama-3.1-70b", "--tp", "4")
    assert any(line.startswith("all-reduce") and line.endswith("interconnect") for line in lines)


@pytest.mark.parametrize(
    "flags,message",
    [
        (("--model", "llama-3.1-70b"), "at --tp 1, more than h100-sxm's usable 72.0 GB .*; use --tp 2 or more"),
        (("--device", "emulated:tpu-v9"), "unknown hardware profile 'tpu-v9'"),
        (("--model", "tiny", "--context", "5000"), r"exceeds tiny's max context \(1024\)"),
        (
            (
                "--batch",
                "0",
            ),
            "batch must be >= 1, got 0",
        ),
    ],
)
def test_refusals_name_the_bad_value(capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str) -> None:
    assert main(["estimate", *flags]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_hardware_lists_every_profile_and_shows_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hardware"]) == 0
    listing = capsys.readouterr().out
    for profile in ("h100-sxm", "h100-pcie", "h200", "a100-80gb", "l40s", "b200", "mi300x", "m2-ultra", "m3-max"):
        assert f"emulated:{profile} " in listing
    assert main(["hardware", "h100-sxm"]) == 0
    detail = capsys.readouterr().out
    assert "NVIDIA H100 Tensor Core GPU datasheet (2023): HBM3 3.35 TB/s" in detail
