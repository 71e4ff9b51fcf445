"""`python -m benchmarks.emulation fidelity`: does an emulated twin predict the real cluster?

The same workload runs on a real cluster on this machine (each node one CPU core) and on its twin: the same
cluster shape, router and KV protocol, every node emulated at dilation 1 (so the twin pays the Python overheads
the real cluster does). The twin's profiles are fitted by `pdsim calibrate --from-steps` to the steps the real
run's nodes recorded, one per role: on these 2 cores the router, the load generator and a decode node's KV
receive share the nodes' cores, so a step while serving is slower than the same step alone, and a profile fitted
to steps alone predicts decode steps a third too fast (`--profile` runs the twin on such a profile instead). The
fit sees step times only: TTFT, TPOT and goodput come from the twin's own queueing, batching and KV handoff.
For each mode it prints TTFT and TPOT medians of both and their ratio, and whether both rank the modes the same
on goodput. Acceptance: medians within 15%, the same order.
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
    profile: Path | None = None  # one profile for every twin node; None: fit one per role to the real run's steps
    output: Path = Path("results/fidelity")
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


def run_fidelity(config: FidelityConfig) -> list[Pair]:
    workload = WorkloadSpec(mix=config.mix, arrivals=Arrivals(rate=config.rate), seed=config.seed)
    limits = RunLimits(duration=config.duration, warmup=2, request_timeout=120.0)
    common = ["--dtype", config.dtype, "--max-batch", str(config.max_batch)]
    pairs = []
    for mode in config.modes:
        steps = config.output / mode.value / "steps"
        real = _run(Cluster(mode, config.counts, config.model, [*common, "--record-steps", str(steps)]),
                    workload, limits)  # fmt: skip
        devices = _twin_devices(config, mode, steps)
        twin = _run(
            Cluster(mode, config.counts, config.model, [*common, *devices, "--dilation", "1"]), workload, limits
        )
        pairs.append(Pair(mode, real, twin))
    return pairs


def _run(cluster: Cluster, workload: WorkloadSpec, limits: RunLimits) -> RunFigures:
    try:
        return measure(cluster, workload, limits)
    finally:
        cluster.stop()


def _twin_devices(config: FidelityConfig, mode: Mode, steps: Path) -> list[str]:
    """The twin's device flags: the given profile for every node, or one fitted per role to the real run's steps."""
    if config.profile is not None:
        return ["--device", f"emulated:{config.profile}"]
    from benchmarks.calibrate.config import CalibrateConfig
    from benchmarks.calibrate.main import calibrate_from_steps, device_profile, format_calibration
    from pdsim.models.spec import ModelSpec

    model = ModelSpec(config.model, "cpu", config.dtype)
    roles = ["colocated"] if mode is Mode.COLOCATED else ["prefill", "decode"]
    base = device_profile(CalibrateConfig(model=model), lambda _: None)
    paths = {}
    for role in roles:
        calibrate = CalibrateConfig(model=model, output=steps.parent / f"{role}.toml")
        calibration = calibrate_from_steps(calibrate, sorted(steps.glob(f"{role}-*.jsonl")), base=base)
        print(f"{mode.value} {role}: " + format_calibration(calibration, str(calibrate.output_path)), flush=True)
        paths[role] = calibrate.output_path
    if mode is Mode.COLOCATED:
        return ["--device", f"emulated:{paths['colocated']}"]
    return ["--device", f"emulated:{paths['decode']}", "--prefill-device", f"emulated:{paths['prefill']}",
            "--decode-device", f"emulated:{paths['decode']}"]  # fmt: skip


def format_fidelity(config: FidelityConfig, pairs: Sequence[Pair]) -> str:
    profiles = f"emulated:{config.profile}" if config.profile else "profiles fitted per role to the real run's steps"
    lines = [
        f"{config.model} ({config.dtype}), mix {config.mix} at {config.rate:g} req/s for {config.duration:g} s; "
        f"twin: {profiles}",
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
    parser.add_argument("--profile", default=None, help="one profile for every twin node (default: fit per role)")
    parser.add_argument("--output", default=str(d.output), help="where the recorded steps and fitted profiles go")
    parser.add_argument("--mix", default=d.mix)
    parser.add_argument("--rate", type=float, default=d.rate)
    parser.add_argument("--duration", type=float, default=d.duration)
    parser.add_argument("--max-batch", type=int, default=d.max_batch)


def fidelity_config_from(args: argparse.Namespace) -> FidelityConfig:
    return FidelityConfig(
        model=args.model, dtype=args.dtype, profile=Path(args.profile) if args.profile else None, mix=args.mix,
        rate=args.rate, duration=args.duration, max_batch=args.max_batch, output=Path(args.output),
    )  # fmt: skip
