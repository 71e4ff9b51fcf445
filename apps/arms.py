"""The arms of an experiment: each a deployment mode and, for colocated workers, the engine's scheduling policy.

`make compare` runs every arm on the identical request list and hardware; the report handles any number of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.topology import Mode
from pdsim.engine.config import SchedulePolicy


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    mode: Mode
    schedule: SchedulePolicy | None = None  # a colocated worker's policy; None: the engine's default

    def __post_init__(self) -> None:
        if self.schedule is not None and self.mode is not Mode.COLOCATED:
            raise ValueError(f"arm {self.name!r}: only colocated workers take a scheduling policy")

    def describe(self) -> str:
        if self.mode is Mode.DISAGGREGATED:
            return "prefill and decode pools, KV moved over gRPC"
        return f"colocated workers, {(self.schedule or SchedulePolicy.CHUNKED).value} scheduling"


# The baseline the literature says disaggregation must beat (colocated with chunked prefill, Sarathi-Serve and
# vLLM's default), the 2023 colocated baseline it replaced (prefill-first: a long prefill stalls every decode),
# and disaggregation itself.
KNOWN_ARMS = {
    arm.name: arm
    for arm in (
        Arm("colocated", Mode.COLOCATED, SchedulePolicy.CHUNKED),
        Arm("colocated-prefill-first", Mode.COLOCATED, SchedulePolicy.PREFILL_FIRST),
        Arm("colocated-decode-first", Mode.COLOCATED, SchedulePolicy.DECODE_FIRST),
        Arm("disaggregated", Mode.DISAGGREGATED),
    )
}
DEFAULT_ARMS = ("colocated", "colocated-prefill-first", "disaggregated")


def arms_named(names: tuple[str, ...]) -> tuple[Arm, ...]:
    unknown = [n for n in names if n not in KNOWN_ARMS]
    if unknown or not names:
        raise ValueError(f"arms must be some of {', '.join(KNOWN_ARMS)}; got {', '.join(names) or 'none'}")
    return tuple(KNOWN_ARMS[n] for n in names)
