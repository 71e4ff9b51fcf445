"""Write a hardware profile as the TOML that `load_profile` reads back (what `pdsim calibrate` produces)."""

from __future__ import annotations

import json
from pathlib import Path

from pdsim.core.emulation.hardware import Figure, HardwareProfile


def _figure(figure: Figure) -> str:
    # A JSON string is a valid TOML basic string (both escape quotes, backslashes and controls the same way).
    return f"{{ value = {figure.value!r}, source = {json.dumps(figure.source)} }}"


def profile_toml(profile: HardwareProfile) -> str:
    lines = [
        f"# {profile.name}: written by pdsim calibrate. Every figure says where it comes from.",
        f"id = {json.dumps(profile.id)}",
        f"name = {json.dumps(profile.name)}",
        "",
        "[peak_flops]",
        *(f"{dtype} = {_figure(figure)}" for dtype, figure in profile.peak_flops.items()),
        "",
        "[memory]",
        f"bandwidth = {_figure(profile.memory_bandwidth)}",
        f"size = {_figure(profile.memory_size)}",
        f"usable_fraction = {_figure(profile.usable_memory_fraction)}",
        "",
        "[interconnect]",
        f"name = {json.dumps(profile.interconnect.name)}",
        f"bandwidth = {_figure(profile.interconnect.bandwidth)}",
        f"latency = {_figure(profile.interconnect.latency)}",
        "",
        "[efficiency]",
        f"flop = {_figure(profile.flop_efficiency)}",
        f"bandwidth = {_figure(profile.bandwidth_efficiency)}",
        f"step_overhead_s = {_figure(profile.step_overhead_s)}",
    ]
    if profile.attention_flop_efficiency is not None:
        lines.append(f"attention_flop = {_figure(profile.attention_flop_efficiency)}")
    if profile.attention_bandwidth_efficiency is not None:
        lines.append(f"attention_bandwidth = {_figure(profile.attention_bandwidth_efficiency)}")
    return "\n".join(lines) + "\n"


def write_profile(profile: HardwareProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_toml(profile))
    return path
