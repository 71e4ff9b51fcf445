"""A workload as a user specifies it (a mix or a trace, arrivals, count, seed, length policy), and its plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadgen.arrivals import Arrivals
from loadgen.mix import Slo, load_mix
from loadgen.traces import read_trace
from loadgen.workload import LengthPolicy, Plan, plan_from_mix, plan_from_trace


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    mix: str = "mixed"  # a shipped mix name or a TOML/YAML file
    trace: str | None = None  # replaces the mix: a shipped trace name or a file
    trace_slo: Slo = field(default_factory=lambda: Slo(ttft=2.0, tpot=0.1))  # SLO of trace requests
    time_scale: float = 1.0  # trace times are multiplied by this (0.5 = twice as fast)
    use_trace_times: bool = True  # False: draw times from `arrivals` instead
    arrivals: Arrivals = field(default_factory=Arrivals)
    count: int = 200  # at most this many requests
    seed: int = 0
    length_policy: LengthPolicy = LengthPolicy.CLIP

    def __post_init__(self) -> None:
        if self.count <= 0:
            raise ValueError(f"count must be > 0, got {self.count}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")

    def plan(self, context: int) -> Plan:
        if self.trace is None:
            return plan_from_mix(load_mix(self.mix), self.arrivals, self.count, self.seed, context, self.length_policy)
        return plan_from_trace(
            read_trace(self.trace),
            self.trace_slo,
            self.count,
            self.seed,
            context,
            self.length_policy,
            time_scale=self.time_scale if self.use_trace_times else None,
            arrivals=None if self.use_trace_times else self.arrivals,
        )

    def describe(self) -> str:
        source = f"trace {self.trace}" if self.trace else f"mix {self.mix}"
        times = f"trace times x{self.time_scale:g}" if self.trace and self.use_trace_times else self.arrivals.describe()
        return f"{source}, {times}, up to {self.count} requests, seed {self.seed}, lengths: {self.length_policy.value}"
