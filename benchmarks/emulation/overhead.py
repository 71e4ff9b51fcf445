"""`python -m benchmarks.emulation overhead`: the time dilation a cluster shape needs.

Python's own work per token (the router, gRPC, the engine loop) is real time; a modeled step on an emulated GPU
is milliseconds. Run at dilation K, every emulated second takes K wall seconds, so that work shrinks K times
next to the steps. This runs one workload on one emulated cluster shape at each dilation asked for and reports:
- the framework overhead: how much longer the nodes' steps took than the cost model says (busy / modeled - 1),
  which is Python's per-step work the dilation did not hide;
- TTFT and TPOT medians (emulated), each against the largest dilation's: a dilation whose figures match it is
  enough for that shape;
- the wall time each run took.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.chaos.cluster import Cluster
from benchmarks.emulation.run import RunFigures, measure
from loadgen.arrivals import Arrivals
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode


@dataclass(frozen=True, slots=True)
class OverheadConfig:
    device: str = "emulated:h100-sxm"
    model: str = "llama-3.1-8b"
    dtype: str = "bfloat16"
    max_context: int = 8192
    mode: Mode = Mode.DISAGGREGATED
    prefill: int = 2
    decode: int = 2
    workers: int = 4
    max_batch: int = 64
    dilations: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
    mix: str = "chat"
    rate: float = 100.0  # requests per emulated second
    duration: float = 2.0  # emulated seconds of sending per dilation
    seed: int = 0

    def cluster_args(self, dilation: float) -> list[str]:
        return ["--device", self.device, "--dtype", self.dtype, "--max-context", str(self.max_context),
                "--max-batch", str(self.max_batch), "--dilation", f"{dilation:g}"]  # fmt: skip


def run_overhead(config: OverheadConfig) -> list[tuple[float, RunFigures, float]]:
    counts = {"workers": config.workers, "prefill": config.prefill, "decode": config.decode}
    workload = WorkloadSpec(mix=config.mix, arrivals=Arrivals(rate=config.rate), seed=config.seed)
    limits = RunLimits(duration=config.duration, warmup=2, request_timeout=60.0)
    results = []
    for dilation in config.dilations:
        started = time.perf_counter()
        cluster = Cluster(config.mode, counts, config.model, config.cluster_args(dilation))
        try:
            figures = measure(cluster, workload, limits)
        finally:
            cluster.stop()
        results.append((dilation, figures, time.perf_counter() - started))
    return results


def format_overhead(config: OverheadConfig, results: Sequence[tuple[float, RunFigures, float]]) -> str:
    shape = f"{config.workers} colocated" if config.mode is Mode.COLOCATED else f"{config.prefill}P+{config.decode}D"
    _, reference, _ = results[-1]
    lines = [
        f"{shape} on {config.device}, {config.model}; mix {config.mix} at {config.rate:g} req/s for "
        f"{config.duration:g} emulated s (medians in emulated ms; 'vs' = against dilation {results[-1][0]:g})",
        f"{'dilation':>8} {'overhead':>8} {'TTFT':>8} {'vs':>6} {'TPOT':>8} {'vs':>6} {'done':>6} {'wall s':>7} errors",
    ]
    for dilation, figures, wall in results:
        ttft, tpot = figures.median("ttft"), figures.median("tpot")
        done = figures.summary["completed"]
        lines.append(
            f"{dilation:>8g} {figures.framework_overhead:>8.1%} {ttft * 1000:>8.2f} "
            f"{ttft / reference.median('ttft'):>6.2f} {tpot * 1000:>8.2f} {tpot / reference.median('tpot'):>6.2f} "
            f"{done:>6} {wall:>7.0f}  {figures.summary['errors'] or ''}"
        )
    return "\n".join(lines)


def add_overhead_args(parser: argparse.ArgumentParser) -> None:
    d = OverheadConfig()
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--model", default=d.model)
    parser.add_argument("--mode", default=d.mode.value, choices=[m.value for m in Mode])
    parser.add_argument("--prefill", type=int, default=d.prefill)
    parser.add_argument("--decode", type=int, default=d.decode)
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--max-batch", type=int, default=d.max_batch)
    parser.add_argument("--dilations", default=",".join(f"{k:g}" for k in d.dilations))
    parser.add_argument("--mix", default=d.mix)
    parser.add_argument("--rate", type=float, default=d.rate, help="requests per emulated second")
    parser.add_argument("--duration", type=float, default=d.duration, help="emulated seconds per dilation")


def overhead_config_from(args: argparse.Namespace) -> OverheadConfig:
    return OverheadConfig(
        device=args.device, model=args.model, mode=Mode(args.mode), prefill=args.prefill, decode=args.decode,
        workers=args.workers, max_batch=args.max_batch,
        dilations=tuple(float(k) for k in args.dilations.split(",") if k.strip()), mix=args.mix, rate=args.rate,
        duration=args.duration,
    )  # fmt: skip
