"""A workload as a user specifies it (a mix or a trace, arrivals, count, seed, length policy), and its plan."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from loadgen.arrivals import Arrivals
from loadgen.mix import load_mix
from loadgen.traces import TraceRequest, read_trace
from loadgen.workload import LengthPolicy, Plan, plan_from_mix, plan_from_trace
from pdsim.core.slo import Slo, SloTable

_CLOSED_LOOP_COUNT = 100_000  # a closed loop is ended by its duration; this only bounds the plan


@dataclass(frozen=True)
class WorkloadSpec:
    mix: str = "mixed"  # a shipped mix name or a TOML/YAML file
    trace: str | None = None  # replaces the mix: a shipped trace name or a file
    trace_slo: Slo = field(default_factory=lambda: Slo(ttft=2.0, tpot=0.1))  # SLO of trace requests
    time_scale: float = 1.0  # trace times are multiplied by this (0.5 = twice as fast)
    use_trace_times: bool = True  # False: draw times from `arrivals` instead
    arrivals: Arrivals = field(default_factory=Arrivals)
    count: int | None = None  # at most this many requests; None: as many as the duration can send
    seed: int = 0
    length_policy: LengthPolicy = LengthPolicy.CLIP

    def __post_init__(self) -> None:
        if self.count is not None and self.count <= 0:
            raise ValueError(f"count must be > 0, got {self.count}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")

    def slo_table(self) -> SloTable:
        """The SLOs the router should count goodput against, the same ones the report judges by."""
        return SloTable(default=self.trace_slo) if self.trace else load_mix(self.mix).slo_table()

    @cached_property
    def _trace(self) -> list[TraceRequest]:
        assert self.trace is not None
        return read_trace(self.trace)

    @property
    def times_from_trace(self) -> bool:
        """Whether send times come from the trace (it has them, and the user did not ask otherwise)."""
        return self.trace is not None and self.use_trace_times and self._trace[0].arrival is not None

    def request_count(self, duration: float) -> int:
        """`count`, or enough requests for `duration` with a margin (the duration ends the run first)."""
        if self.count is not None:
            return self.count
        if self.times_from_trace:
            return len(self._trace)
        if not self.arrivals.open_loop:
            return _CLOSED_LOOP_COUNT
        return math.ceil(self.arrivals.rate * duration * 1.5) + 16

    def plan(self, context: int, duration: float) -> Plan:
        count = self.request_count(duration)
        if self.trace is None:
            return plan_from_mix(load_mix(self.mix), self.arrivals, count, self.seed, context, self.length_policy)
        return plan_from_trace(
            self._trace,
            self.trace_slo,
            count,
            self.seed,
            context,
            self.length_policy,
            time_scale=self.time_scale if self.times_from_trace else None,
            arrivals=self.arrivals,
        )

    def describe(self) -> str:
        source = f"trace {self.trace}" if self.trace else f"mix {self.mix}"
        times = f"trace times x{self.time_scale:g}" if self.times_from_trace else self.arrivals.describe()
        bound = f"up to {self.count} requests" if self.count else "requests for the whole duration"
        return f"{source}, {times}, {bound}, seed {self.seed}, over-long lengths: {self.length_policy.value}"
