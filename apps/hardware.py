"""`pdsim hardware`: the emulated accelerators pdsim ships, with their published figures and where each comes from.

Only prints what `pdsim.core.emulation` loads; the figures themselves live in its profile data files.
"""

from __future__ import annotations

import argparse

from pdsim.core.emulation.hardware import EMULATED_PREFIX, HardwareProfile, load_profile, profile_ids
from pdsim.core.emulation.links import link_ids, load_link
from pdsim.core.emulation.models import model_names


def add_hardware_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", nargs="?", default=None, help="one profile's figures with their sources")
    parser.add_argument("--sources", action="store_true", help="every profile's figures with their sources")


def run_hardware(args: argparse.Namespace) -> int:
    if args.profile is not None:
        lines = profile_sources(load_profile(args.profile))
    else:
        profiles = [load_profile(i) for i in profile_ids()]
        lines = profile_table(profiles)
        if args.sources:
            for profile in profiles:
                lines += ["", *profile_sources(profile)]
        else:
            lines += ["", "`pdsim hardware ID` (or --sources) shows where every figure comes from."]
        lines.append(f"models: {', '.join(model_names())}, or a config.json path")
        lines.append(f"links (--link, KV from prefill to decode): {', '.join(link_summary(i) for i in link_ids())}")
    print("\n".join(lines))
    return 0


def profile_table(profiles: list[HardwareProfile]) -> list[str]:
    """One row per profile: dense peaks, memory, interconnect (one direction) and the efficiencies."""
    header = f"{'device':<20}{'bf16 TF/s':>10}{'fp32 TF/s':>10}{'mem GB':>8}{'mem TB/s':>9}  "
    lines = [header + f"{'interconnect (one way)':<27}{'flop eff':>9}{'bw eff':>7}{'overhead':>10}"]
    for p in profiles:
        link = p.interconnect
        lines.append(
            f"{EMULATED_PREFIX + p.id:<20}{p.peak('bfloat16') / 1e12:>10.1f}{p.peak('float32') / 1e12:>10.1f}"
            f"{p.memory_size.value / 1e9:>8.0f}{p.memory_bandwidth.value / 1e12:>9.2f}  "
            f"{f'{link.name} {link.bandwidth.value / 1e9:g} GB/s':<27}{p.flop_efficiency.value:>9.2f}"
            f"{p.bandwidth_efficiency.value:>7.2f}{p.step_overhead_s.value * 1e3:>8.2f}ms"
        )
    return lines


def link_summary(link_id: str) -> str:
    link = load_link(link_id)
    return f"{link_id} {link.bandwidth.value / 1e9:g} GB/s"


def profile_sources(profile: HardwareProfile) -> list[str]:
    lines = [f"{EMULATED_PREFIX}{profile.id}: {profile.name} (interconnect: {profile.interconnect.name})"]
    for name, figure in profile.figures():
        lines.append(f"  {name:<24}{figure.value:<10.4g} {figure.source}")
    return lines
