"""Experiments on emulated devices: the sweep comes from the modeled capacity, the report's setup names the
profiles, link and dilation, and the time estimate counts the dilation."""

from __future__ import annotations

import dataclasses

import pytest

from apps.emulated_rates import RATE_FRACTIONS, device_capacity, emulated_rates
from apps.experiment import ExperimentConfig, expected_time
from loadgen.runner import RunLimits
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.models.spec import ModelSpec

H100 = ModelSpec("llama-3.1-8b", "emulated:h100-sxm", "bfloat16")


def test_the_sweep_straddles_the_clusters_modeled_capacity() -> None:
    one = device_capacity(H100, EmulationConfig(), "rag", max_batch=16)
    main, sweep = emulated_rates(H100, EmulationConfig(), "rag", max_batch=16, devices=4)
    assert sweep[-1] == pytest.approx(4 * one, rel=0.05) and len(sweep) == len(RATE_FRACTIONS)
    assert sweep == tuple(sorted(sweep)) and sweep[0] < main < sweep[-1]
    # A slower device serves fewer requests: an A100's sweep is lower.
    a100 = dataclasses.replace(H100, device="emulated:a100-80gb")
    assert emulated_rates(a100, EmulationConfig(), "rag", 16, 4)[1][-1] < sweep[-1]


def test_the_setup_names_the_devices_link_and_dilation() -> None:
    config = ExperimentConfig(model=H100, emulation=EmulationConfig(link="roce-100g", dilation=5.0),
                              decode_device="emulated:a100-80gb")  # fmt: skip
    described = config.describe()
    assert described["emulation"]["dilation"] == 5.0
    placement = described["placement"]
    for words in ("NVIDIA H100 SXM5 80GB", "NVIDIA A100", "decode on emulated:a100-80gb", "RoCE", "dilation 5"):
        assert words in placement, placement
    assert ExperimentConfig().describe()["emulation"] is None


def test_the_time_estimate_counts_the_dilation() -> None:
    limits = RunLimits(duration=5.0, warmup=0, drain_timeout=10.0)
    slow = ExperimentConfig(model=H100, limits=limits, emulation=EmulationConfig(dilation=10.0))
    fast = dataclasses.replace(slow, emulation=EmulationConfig(dilation=2.0))
    minutes = [float(expected_time(c, 3, 4).split("about ")[1].split(" min")[0]) for c in (slow, fast)]
    assert minutes[0] > 3 * minutes[1]
