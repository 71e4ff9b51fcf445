"""A phase benchmark's points: steps of one shape with their time and their FLOPs and bytes (plain data, torch-free:
measured by `timing`, or predicted for an emulated device by `emulated`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdsim.core.emulation.costs import Cost


@dataclass(frozen=True, slots=True)
class Point:
    """Forwards of one shape, measured: totals over `steps` forwards, so every rate is a total over `seconds`."""

    phase: str  # "prefill" or "decode"
    batch: int
    context: int  # prefill: prompt length; decode: tokens cached before the step (the mean, for a generation)
    steps: int
    seconds: float
    tokens: int  # prefill: prompt tokens processed; decode: tokens generated
    flops: float
    bytes: float

    @property
    def step_seconds(self) -> float:
        return self.seconds / self.steps

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes


@dataclass(frozen=True, slots=True)
class Headline:
    """The seed's experiment: `batch` concurrent requests, one batched prefill, then every decode step."""

    prefill: Point
    decode: Point
    step_seconds: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """Prefill tokens/s over decode tokens/s."""
        return self.prefill.tokens_per_s / self.decode.tokens_per_s


def generation_point(steps: Sequence[Point]) -> Point:
    """A generation's decode steps (one token for each of the batch's requests, each step one context longer) as
    one point: their totals, at the mean context."""
    first = steps[0]
    return Point(
        "decode", first.batch, first.context + (len(steps) - 1) // 2, sum(p.steps for p in steps),
        sum(p.seconds for p in steps), sum(p.tokens for p in steps), sum(p.flops for p in steps),
        sum(p.bytes for p in steps),
    )  # fmt: skip


def cost_point(phase: str, batch: int, context: int, steps: int, step_seconds: float, tokens: int, cost: Cost) -> Point:
    return Point(
        phase, batch, context, steps, step_seconds * steps, tokens * steps, cost.flops * steps, cost.bytes * steps
    )
