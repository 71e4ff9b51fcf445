"""`python -m benchmarks.emulation fidelity`: does an emulated twin predict the real cluster?

The same workload runs on a real cluster on this machine (each node one CPU core) and on its twin: the same
cluster shape, router and KV protocol, with every node emulated on the profile `pdsim calibrate` fitted to this
CPU (at dilation 1, so the twin pays the same Python overheads the real cluster does). For each mode it prints
TTFT and TPOT medians of both and their ratio, and whether both rank the modes the same on goodput. Acceptance:
medians within 15%, the same order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.chaos.cluster import Cluster
from benchmarks.emulation.run import RunFigures, measure
from loadgen.arrivals import Arrivals
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode


@dataclass(frozen=True, slots=True)
class FidelityConfig:
    model: str = "small"
    dtype: str = "bfloat16"
    profile: Path | None = None  # a calibrated profile of this CPU; None: calibrate one first
    modes: tuple[Mode, ...] = (Mode.COLOCATED, Mode.DISAGGREGATED)
    counts: dict[str, int] = field(default_factory=lambda: {"workers": 2, "prefill": 1, "decode": 1})
    max_batch: int = 16
    mix: str = "mixed"
    rate: float = 1.5
    duration: float = 30.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Pair:
    mode: Mode
    real: RunFigures
    twin: RunFigures


def run_fidelity(config: FidelityConfig, profile: Path) -> list[Pair]:
    workload = WorkloadSpec(mix=config.mix, arrivals=Arrivals(rate=config.rate), seed=config.seed)
    limits = RunLimits(duration=config.duration, warmup=2, request_timeout=120.0)
    common = ["--dtype", config.dtype, "--max-batch", str(config.max_batch)]
    twin = [*common, "--device", f"emulated:{profile}", "--dilation", "1"]
    pairs = []
    for mode in config.modes:
        figures = []
        for extra in (common, twin):
            cluster = Cluster(mode, config.counts, config.model, extra)
            try:
                figures.append(measure(cluster, workload, limits))
            finally:
                cluster.stop()
        pairs.append(Pair(mode, *figures))
    return pairs


def format_fidelity(config: FidelityConfig, profile: Path, pairs: Sequence[Pair]) -> str:
    lines = [
        f"{config.model} ({config.dtype}), mix {config.mix} at {config.rate:g} req/s for {config.duration:g} s; "
        f"twin: emulated:{profile}",
        f"{'mode':<14} {'metric':<8} {'real ms':>9} {'twin ms':>9} {'twin/real':>9}",
    ]
    for pair in pairs:
        for metric in ("ttft", "tpot"):
            real, twin = pair.real.median(metric), pair.twin.median(metric)
            lines.append(
                f"{pair.mode.value:<14} {metric.upper():<8} {real * 1000:>9.1f} {twin * 1000:>9.1f} {twin / real:>9.2f}"
            )
    lines.append(f"{'mode':<14} {'goodput req/s':>14} {'real':>7} {'twin':>7}")
    for pair in pairs:
        real, twin = pair.real.summary["goodput"], pair.twin.summary["goodput"]
        lines.append(f"{pair.mode.value:<14} {'':>14} {real:>7.2f} {twin:>7.2f}")
    real_order = [p.mode.value for p in sorted(pairs, key=lambda p: -p.real.summary["goodput"])]
    twin_order = [p.mode.value for p in sorted(pairs, key=lambda p: -p.twin.summary["goodput"])]
    same = "the same" if real_order == twin_order else "DIFFERENT"
    lines.append(f"goodput order: real {' > '.join(real_order)}; twin {' > '.join(twin_order)} ({same})")
    return "\n".join(lines)


def add_fidelity_args(parser: argparse.ArgumentParser) -> None:
    d = FidelityConfig()
    parser.add_argument("--model", default=d.model)
    parser.add_argument("--dtype", default=d.dtype)
    parser.add_argument("--profile", default=None, help="a profile from pdsim calibrate (default: calibrate now)")
    parser.add_argument("--mix", default=d.mix)
    parser.add_argument("--rate", type=float, default=d.rate)
    parser.add_argument("--duration", type=float, default=d.duration)
    parser.add_argument("--max-batch", type=int, default=d.max_batch)


def fidelity_config_from(args: argparse.Namespace) -> FidelityConfig:
    return FidelityConfig(
        model=args.model, dtype=args.dtype, profile=Path(args.profile) if args.profile else None, mix=args.mix,
        rate=args.rate, duration=args.duration, max_batch=args.max_batch,
    )  # fmt: skip


def calibrated_profile(config: FidelityConfig) -> Path:
    """The config's profile, or one `pdsim calibrate` fits now for its model on this CPU."""
    if config.profile is not None:
        return config.profile
    from benchmarks.calibrate.config import CalibrateConfig
    from benchmarks.calibrate.main import format_calibration, run_calibrate
    from pdsim.models.spec import ModelSpec

    calibrate = CalibrateConfig(model=ModelSpec(config.model, "cpu", config.dtype))
    calibration = run_calibrate(calibrate)
    print(format_calibration(calibration, str(calibrate.output_path)), flush=True)
    return calibrate.output_path
