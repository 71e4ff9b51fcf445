"""Experiments: the same workload against each arm (a deployment, and a colocated worker's scheduling) on the
same hardware, at one rate or a sweep.

`make colocated` / `make disaggregated` run one arm at the main rate into results/<arm>/; `make compare` runs
every arm over the rate sweep into results/compare/<arm>/rate-<r>/ and writes the report there.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from apps.arms import DEFAULT_ARMS, Arm, arms_named
from apps.launcher import ClusterSpec, default_targets_dir, started_cluster
from apps.loadgen_cli import measure
from loadgen.mix import load_mix
from loadgen.results import format_summary
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode
from pdsim.engine.config import EngineConfig
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig
from router.config import Policy


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    model: ModelSpec = field(default_factory=lambda: ModelSpec("small", dtype="bfloat16"))
    workers: int = 2  # colocated
    prefill: int = 1  # disaggregated
    decode: int = 1
    max_batch: int = 16
    routing: Policy = Policy.LEAST_LOADED
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    limits: RunLimits = field(default_factory=lambda: RunLimits(duration=30.0, warmup=4, drain_timeout=60.0))
    # The main rate (`make colocated`/`disaggregated`, the report's CDFs) and the sweep of `make compare`. Measured
    # on the 2-core machine these defaults are for, every arm of the `mixed` workload held 90% of its SLOs at about
    # 1-2 req/s and none at 3: a sweep past the knee spends its time draining overloaded runs.
    rate: float = 1.5
    rates: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    arms: tuple[str, ...] = DEFAULT_ARMS  # what `make compare` runs, by name (see apps/arms.py)
    output: Path = Path("results")

    def __post_init__(self) -> None:
        if self.rate <= 0 or any(r <= 0 for r in self.rates):
            raise ValueError(f"rates must be > 0, got {self.rate} and {self.rates}")
        arms_named(self.arms)

    def devices(self, arm: Arm) -> int:
        return self.workers if arm.mode is Mode.COLOCATED else self.prefill + self.decode

    def shape(self, arm: Arm) -> str:
        if arm.mode is Mode.COLOCATED:
            return f"{self.workers} workers"
        return f"{self.prefill} prefill + {self.decode} decode"

    def engine(self, arm: Arm) -> EngineConfig:
        defaults = EngineConfig(max_batch=self.max_batch)
        return dataclasses.replace(defaults, policy=arm.schedule) if arm.schedule else defaults

    def cluster(self, arm: Arm) -> ClusterSpec:
        node = NodeConfig(model=self.model, engine=self.engine(arm))
        return ClusterSpec(
            arm.mode, self.workers, self.prefill, self.decode, node, router_port=0, http_port=None,
            routing=self.routing, slos=self.workload.slo_table(), targets_dir=default_targets_dir(),
        )  # fmt: skip

    def workload_at(self, rate: float) -> WorkloadSpec:
        return dataclasses.replace(self.workload, arrivals=dataclasses.replace(self.workload.arrivals, rate=rate))

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model.model,
            "dtype": self.model.dtype,
            "device": self.model.device,
            "max_batch": self.max_batch,
            "arms": [
                {
                    "name": a.name,
                    "mode": a.mode.value,
                    "describe": a.describe(),
                    "devices": self.devices(a),
                    "shape": self.shape(a),
                }
                for a in arms_named(self.arms)
            ],
            "routing": self.routing.value,
            "step_token_budget": EngineConfig().step_token_budget,
            "placement": self._placement(),
            "workload": self._workload_text(),
            "classes": self._classes(),
            "duration_s": self.limits.duration,
            "warmup_requests": self.limits.warmup,
            "rate": self.rate,
            "rates": list(self.rates),
        }

    def _placement(self) -> str:
        if self.model.device != "cpu":
            return f"every node on {self.model.device}"
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        most = max(self.devices(a) for a in arms_named(self.arms))
        if most <= cores:
            return "on this CPU every node has its own core and one torch thread"
        return (
            f"**{most} nodes share {cores} cores**: they are not separate devices, and per-device rates overstate them"
        )

    def _workload_text(self) -> str:
        w = self.workload
        source = f"trace {w.trace}" if w.trace else f"mix {w.mix}"
        return f"{source}, {w.arrivals.kind.value} arrivals, seed {w.seed}, over-long lengths: {w.length_policy.value}"

    def _classes(self) -> list[str]:
        if self.workload.trace:
            return []
        mix = load_mix(self.workload.mix)
        total = sum(c.weight for c in mix.classes)
        return [
            f"{c.name} ({c.weight / total:.0%}): input {c.input.describe()}, output {c.output.describe()} tokens"
            for c in mix.classes
        ]


def run_arm(config: ExperimentConfig, arm: Arm, rates: tuple[float, ...], output: Path) -> None:
    """Start the arm's cluster once and run each rate against it; one results directory per rate."""
    described = config.describe()
    with started_cluster(config.cluster(arm)) as launcher:
        for rate in rates:
            directory = output if len(rates) == 1 else output / f"rate-{rate:g}"
            extra = {"arm": arm.name, "mode": arm.mode.value, "rate": rate, "devices": config.devices(arm),
                     "experiment": described}  # fmt: skip
            summary = uvloop.run(
                measure(
                    launcher.router_address,
                    config.workload_at(rate),
                    config.limits,
                    directory,
                    label=f"{arm.name} @ {rate:g} req/s ",
                    extra=extra,
                )
            )
            print(format_summary(summary, f"== {arm.name} at {rate:g} req/s -> {directory}"), flush=True)


def run_single(config: ExperimentConfig, arm_name: str) -> int:
    (arm,) = arms_named((arm_name,))
    run_arm(config, arm, (config.rate,), config.output / arm.name)
    return 0


def run_compare(config: ExperimentConfig) -> Path:
    from apps.report import write_report

    workload = config.workload
    if workload.times_from_trace or not workload.arrivals.open_loop:
        raise ValueError(
            "compare sweeps the arrival rate, so it needs open-loop arrivals (poisson, gamma, constant); a trace "
            "replayed at its own times or a closed loop has no rate to sweep: use --ignore-trace-times, or run "
            "`pdsim loadgen` against `pdsim up` for those"
        )
    rates = tuple(sorted({*config.rates, config.rate}))
    directory = config.output / "compare"
    for arm in arms_named(config.arms):
        run_arm(config, arm, rates, directory / arm.name)
    return write_report(directory, config.describe())
