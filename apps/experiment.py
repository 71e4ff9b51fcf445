"""Experiments: the same workload against each arm (a deployment, and a colocated worker's scheduling) on the
same hardware, at one rate or a sweep, each rate once or repeated with other seeds, and optionally a search for
the highest rate each arm holds (`apps.capacity`).

`make colocated` / `make disaggregated` run one arm at the main rate into results/<arm>/; `make compare` runs
every arm over the rate sweep into results/compare/<arm>/rate-<r>/ (see `apps.sweep` for the layout with repeats
and capacity probes) and writes the report there.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from apps.arms import DEFAULT_ARMS, Arm, arms_named
from apps.capacity import Capacity, CapacitySearch, find_capacity, write_capacity
from apps.launcher import ClusterSpec, default_targets_dir, started_cluster
from apps.loadgen_cli import measure
from apps.sweep import Summary, capacity_dir, holds, rate_dir, run_dir
from loadgen.mix import load_mix
from loadgen.results import format_summary
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.emulation.hardware import EMULATED_PREFIX, load_profile
from pdsim.core.emulation.links import load_link
from pdsim.core.topology import Mode
from pdsim.engine.config import EngineConfig
from pdsim.engine.emulated.config import EmulationConfig
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
    # colocated chunked: tokens per step (EngineConfig's default is measured for this CPU; a GPU takes more)
    step_token_budget: int = EngineConfig().step_token_budget
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
    # Each rate runs this many times, seed, seed + 1, ...: the same mix, other arrival times and lengths. The report
    # then gives every figure as the median with a 95% interval (apps/intervals.py).
    repeats: int = 1
    # The sweep when repeating (the main rate is always run). Each rate costs `repeats` runs, so it keeps the two
    # rates on either side of the knee measured here; the capacity search covers the rest of the rate axis.
    repeat_rates: tuple[float, ...] = (1.0, 1.5)
    find_capacity: bool = False  # after the sweep, bisect for the highest rate each arm holds (apps/capacity.py)
    capacity: CapacitySearch = field(default_factory=CapacitySearch)
    # On emulated devices (`model.device` emulated:<profile>): tp, the KV link and the dilation; and each
    # disaggregated pool on its own hardware when set (e.g. emulated:h100-sxm prefill, emulated:a100-80gb decode).
    emulation: EmulationConfig = field(default_factory=EmulationConfig)
    prefill_device: str | None = None
    decode_device: str | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or any(r <= 0 for r in (*self.rates, *self.repeat_rates)):
            raise ValueError(f"rates must be > 0, got {self.rate}, {self.rates} and {self.repeat_rates}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        arms_named(self.arms)

    def sweep(self) -> tuple[float, ...]:
        """The rates `make compare` runs: `rates`, or `repeat_rates` when repeating, and the main rate."""
        return tuple(sorted({*(self.rates if self.repeats == 1 else self.repeat_rates), self.rate}))

    def devices(self, arm: Arm) -> int:
        return self.workers if arm.mode is Mode.COLOCATED else self.prefill + self.decode

    def shape(self, arm: Arm) -> str:
        if arm.mode is Mode.COLOCATED:
            return f"{self.workers} workers"
        return f"{self.prefill} prefill + {self.decode} decode"

    def engine(self, arm: Arm) -> EngineConfig:
        defaults = EngineConfig(max_batch=self.max_batch, step_token_budget=self.step_token_budget)
        return dataclasses.replace(defaults, policy=arm.schedule) if arm.schedule else defaults

    @property
    def emulated(self) -> bool:
        devices = (self.model.device, self.prefill_device, self.decode_device)
        return any(d is not None and d.startswith(EMULATED_PREFIX) for d in devices)

    def cluster(self, arm: Arm) -> ClusterSpec:
        node = NodeConfig(model=self.model, engine=self.engine(arm), emulation=self.emulation)
        return ClusterSpec(
            arm.mode, self.workers, self.prefill, self.decode, node, router_port=0, http_port=None,
            routing=self.routing, slos=self.workload.slo_table(), targets_dir=default_targets_dir(),
            prefill_device=self.prefill_device, decode_device=self.decode_device,
        )  # fmt: skip

    def workload_at(self, rate: float, repeat: int = 1) -> WorkloadSpec:
        """The workload at `rate`; repeat k (from 1) draws its times and lengths from seed + k - 1."""
        arrivals = dataclasses.replace(self.workload.arrivals, rate=rate)
        return dataclasses.replace(self.workload, arrivals=arrivals, seed=self.workload.seed + repeat - 1)

    def probe_limits(self) -> RunLimits:
        return dataclasses.replace(self.limits, duration=self.capacity.probe_duration)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model.model,
            "dtype": self.model.dtype,
            "device": self.model.device,
            "emulation": self._emulation_record(),
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
            "step_token_budget": self.step_token_budget,
            "placement": self._placement(),
            "workload": self._workload_text(),
            "classes": self._classes(),
            "duration_s": self.limits.duration,
            "warmup_requests": self.limits.warmup,
            "rate": self.rate,
            "rates": list(self.sweep()),
            "repeats": self.repeats,
            "seeds": [self.workload.seed + k for k in range(self.repeats)],
            "capacity_search": {**dataclasses.asdict(self.capacity), "enabled": self.find_capacity},
        }

    def _emulation_record(self) -> dict[str, Any] | None:
        if not self.emulated:
            return None
        pools = {"prefill_device": self.prefill_device, "decode_device": self.decode_device}
        return {**dataclasses.asdict(self.emulation), **pools}

    def _placement(self) -> str:
        if self.emulated:
            return emulation_text(self.model.device, self.prefill_device, self.decode_device, self.emulation)
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


def emulation_text(device: str, prefill: str | None, decode: str | None, emulation: EmulationConfig) -> str:
    """The report's placement line for emulated devices: the profiles, tp, link and the dilation."""
    profiles = {device, prefill or device, decode or device}
    named = ", ".join(
        f"{load_profile(p).name} (`{p.removeprefix(EMULATED_PREFIX)}`)" if p.startswith(EMULATED_PREFIX) else p
        for p in sorted(profiles)
    )
    pools = f"; prefill on {prefill or device}, decode on {decode or device}" if prefill or decode else ""
    return (
        f"every node an emulated accelerator (modeled steps, no weights): {named}{pools}; tensor parallel "
        f"{emulation.tp}, KV over {load_link(emulation.link).name}; time dilation {emulation.dilation:g} (the "
        f"cluster ran {emulation.dilation:g}x slower than emulated time; every figure here is in emulated seconds)"
    )


# Measured here: the default `make compare` (3 arms x 4 rates x 30 s of sending) took 7 min 10 s, about 4 s per
# run beyond its duration (warm-up, drain) and 10 s per arm to start its cluster.
_RUN_OVERHEAD_S = 4.0
_START_S = 10.0


def expected_time(config: ExperimentConfig, arms: int, rates: int) -> str:
    """What a run of `arms` x `rates` will take, said before it starts: typically, and at most (every run waiting
    out its whole drain)."""
    runs = arms * rates * config.repeats
    probes = arms * config.capacity.max_probes if config.find_capacity else 0
    # Emulated seconds take `dilation` wall seconds each.
    dilation = config.emulation.dilation if config.emulated else 1.0
    sending = (runs * config.limits.duration + probes * config.capacity.probe_duration) * dilation
    typical = arms * _START_S + sending + (runs + probes) * _RUN_OVERHEAD_S
    most = arms * _START_S + sending + (runs + probes) * (_RUN_OVERHEAD_S + config.limits.drain_seconds * dilation)
    text = f"{arms} arms x {rates} rates x {config.repeats} repeats = {runs} runs of {config.limits.duration:g} s"
    if probes:
        search = config.capacity
        text += f", and up to {search.max_probes} capacity probes of {search.probe_duration:g} s per arm"
    return f"{text}: about {typical / 60:.0f} min, at most {most / 60:.0f} min if every run waits out its drain"


def _run_once(
    config: ExperimentConfig, arm: Arm, router: str, workload: WorkloadSpec, limits: RunLimits, directory: Path,
    extra: dict[str, Any],
) -> Summary:  # fmt: skip
    rate = workload.arrivals.rate
    extra = {"arm": arm.name, "mode": arm.mode.value, "rate": rate, "devices": config.devices(arm),
             "seed": workload.seed, "experiment": config.describe(), **extra}  # fmt: skip
    label = f"{arm.name} @ {rate:g} req/s" + (f", seed {workload.seed}" if config.repeats > 1 else "")
    started = time.perf_counter()
    summary = uvloop.run(measure(router, workload, limits, directory, label=label + " ", extra=extra))
    took = time.perf_counter() - started
    print(format_summary(summary, f"== {label} -> {directory} ({took:.0f} s)"), flush=True)
    return summary


def run_arm(config: ExperimentConfig, arm: Arm, rates: tuple[float, ...], output: Path, one_rate: bool = False) -> None:
    """Start the arm's cluster once and run each rate against it (each repeat in its own directory, see
    `apps.sweep`), then search for its capacity if asked. `one_rate`: the rate's runs go in `output` itself."""
    _clear(output)
    with started_cluster(config.cluster(arm)) as launcher:
        runs: dict[float, list[Summary]] = {rate: [] for rate in rates}
        # Repeat by repeat, each over every rate: a slow spell on the shared machine then hits all rates alike.
        for repeat in range(1, config.repeats + 1):
            for rate in rates:
                directory = run_dir(output if one_rate else rate_dir(output, rate), repeat, config.repeats)
                summary = _run_once(config, arm, launcher.router_address, config.workload_at(rate, repeat),
                                    config.limits, directory, {"repeat": repeat})  # fmt: skip
                runs[rate].append(summary)
        if config.find_capacity:
            _search(config, arm, launcher.router_address, {r: holds(s) for r, s in runs.items()}, output)


def _clear(output: Path) -> None:
    """Remove an earlier experiment's runs: a rate no longer swept, or a single run beside new repeats, would
    otherwise mix into this one's report."""
    for stale in (*output.glob("rate-*"), *output.glob("repeat-*"), capacity_dir(output)):
        if stale.is_dir():
            shutil.rmtree(stale)


def _search(config: ExperimentConfig, arm: Arm, router: str, swept: dict[float, bool], output: Path) -> Capacity:
    directory = capacity_dir(output)

    def probe(rate: float) -> Summary:
        return _run_once(config, arm, router, config.workload_at(rate), config.probe_limits(),
                         rate_dir(directory, rate), {"capacity_probe": True})  # fmt: skip

    capacity = find_capacity(probe, config.capacity, swept, config.rate)
    write_capacity(directory, capacity)
    print(f"== {arm.name} capacity at >= 90% SLO attainment: {capacity.describe()}", flush=True)
    return capacity


def run_single(config: ExperimentConfig, arm_name: str) -> int:
    (arm,) = arms_named((arm_name,))
    print(f"experiment: {expected_time(config, 1, 1)}", flush=True)
    run_arm(config, arm, (config.rate,), config.output / arm.name, one_rate=True)
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
    rates = config.sweep()
    arms = arms_named(config.arms)
    print(f"compare: {expected_time(config, len(arms), len(rates))}", flush=True)
    directory = config.output / "compare"
    for arm in arms:
        run_arm(config, arm, rates, directory / arm.name)
    return write_report(directory, config.describe())
