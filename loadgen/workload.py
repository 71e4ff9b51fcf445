"""The request plan: a reproducible list of requests (class, lengths, prompt, send time) from a seed.

From a mix (classes drawn by weight, lengths from their distributions, times from an arrival process) or from a
trace (its lengths and, optionally, its times, scaled). Lengths that do not fit the model's context follow a
stated policy — scale, clip or skip — and the plan counts the requests it changed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from loadgen.arrivals import Arrivals
from loadgen.mix import Mix
from loadgen.traces import TraceRequest
from pdsim.core.slo import Slo

PROMPT_TOKEN_RANGE = (1, 256)  # prompt token ids are drawn here: valid in any vocabulary of 256 or more


class LengthPolicy(Enum):
    # Shrink every request's input and output by one factor, the one that makes the longest request fit: each
    # request keeps its input/output ratio and the lengths keep their distribution's shape.
    SCALE = "scale"
    # Keep the output; cut the prompt to what is left (the output too if it alone leaves no room).
    CLIP = "clip"
    # Drop the request.
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    index: int
    request_class: str
    input_tokens: int
    output_tokens: int
    ignore_eos: bool
    send_at: float | None  # seconds after the start; None in a closed loop
    prompt_seed: int  # the prompt's token ids are drawn from this
    adjusted: bool = False  # the length policy changed this request's lengths


@dataclass(frozen=True, slots=True)
class Plan:
    requests: tuple[PlannedRequest, ...]
    slos: dict[str, Slo]
    skipped_at: tuple[float | None, ...]  # the planned send times of requests the policy dropped
    policy: LengthPolicy
    scale_factor: float = 1.0  # what the scale policy multiplied every length by (1: nothing was scaled)

    @property
    def adjusted(self) -> int:
        return sum(r.adjusted for r in self.requests)

    def skipped_within(self, duration: float) -> int:
        """Dropped requests that would have been sent within `duration` (all of them in a closed loop)."""
        return sum(1 for t in self.skipped_at if t is None or t <= duration)

    def prompt(self, request: PlannedRequest) -> list[int]:
        rng = random.Random(request.prompt_seed)
        low, high = PROMPT_TOKEN_RANGE
        return [rng.randrange(low, high) for _ in range(request.input_tokens)]


def scale_factor(drawn: Sequence[tuple[int, int]], context: int) -> float:
    """The one factor that makes the longest (input + output) of `drawn` fit `context`; 1 when all fit."""
    longest = max((max(1, i) + max(1, o) for i, o in drawn), default=0)
    return min(1.0, context / longest) if longest else 1.0


def fit_lengths(
    input_tokens: int, output_tokens: int, context: int, policy: LengthPolicy, factor: float = 1.0
) -> tuple[int, int] | None:
    """Lengths that fit `context` (prompt + output <= context, each at least 1), or None to skip. The scale policy
    multiplies both by `factor` (see `scale_factor`), then clips what rounding left over the context."""
    input_tokens, output_tokens = max(1, input_tokens), max(1, output_tokens)  # traces hold some zeros
    if policy is LengthPolicy.SCALE:
        input_tokens, output_tokens = max(1, round(input_tokens * factor)), max(1, round(output_tokens * factor))
    if input_tokens + output_tokens <= context:
        return input_tokens, output_tokens
    if policy is LengthPolicy.SKIP:
        return None
    output_tokens = min(output_tokens, context - 1)
    return min(input_tokens, context - output_tokens), output_tokens


class _PlanBuilder:
    """Collects the drawn requests, then fits each to the context by the policy (the scale factor needs them
    all), numbering what is kept and noting what is not."""

    def __init__(self, context: int, policy: LengthPolicy) -> None:
        self.context, self.policy = context, policy
        self._drawn: list[tuple[str, tuple[int, int], bool, float | None, int]] = []

    def add(self, cls: str, drawn: tuple[int, int], ignore_eos: bool, when: float | None, prompt_seed: int) -> None:
        self._drawn.append((cls, drawn, ignore_eos, when, prompt_seed))

    def plan(self, slos: dict[str, Slo]) -> Plan:
        factor = 1.0
        if self.policy is LengthPolicy.SCALE:
            factor = scale_factor([drawn for _, drawn, *_ in self._drawn], self.context)
        requests: list[PlannedRequest] = []
        skipped_at: list[float | None] = []
        for cls, drawn, ignore_eos, when, prompt_seed in self._drawn:
            fitted = fit_lengths(*drawn, self.context, self.policy, factor)
            if fitted is None:
                skipped_at.append(when)
                continue
            requests.append(PlannedRequest(len(requests), cls, *fitted, ignore_eos, when, prompt_seed, fitted != drawn))
        return Plan(tuple(requests), slos, tuple(skipped_at), self.policy, factor)


def _streams(seed: int) -> tuple[random.Random, random.Random]:
    """Separate generators for send times and for request contents, so that the same seed gives the same
    requests (classes, lengths, prompts) at every rate of a sweep; only their times scale."""
    return random.Random(f"{seed}:arrivals"), random.Random(f"{seed}:requests")


def plan_from_mix(mix: Mix, arrivals: Arrivals, count: int, seed: int, context: int, policy: LengthPolicy) -> Plan:
    time_rng, rng = _streams(seed)
    times: Sequence[float | None] = arrivals.offsets(time_rng, count) if arrivals.open_loop else [None] * count
    weights = [c.weight for c in mix.classes]
    builder = _PlanBuilder(context, policy)
    for when in times:
        cls = rng.choices(mix.classes, weights)[0]
        drawn = (cls.input.sample(rng), cls.output.sample(rng))
        builder.add(cls.name, drawn, cls.ignore_eos, when, rng.getrandbits(63))
    return builder.plan(mix.slos)


def plan_from_trace(
    trace: Sequence[TraceRequest],
    slo: Slo,
    count: int,
    seed: int,
    context: int,
    policy: LengthPolicy,
    time_scale: float | None,
    arrivals: Arrivals | None = None,
    class_name: str = "trace",
) -> Plan:
    """The first `count` requests of a trace. Times: the trace's own multiplied by `time_scale` (0.5 replays
    twice as fast); or, when `time_scale` is None or the trace has no times, drawn from `arrivals`."""
    time_rng, rng = _streams(seed)
    chosen = list(trace[:count])
    if time_scale is None or any(r.arrival is None for r in chosen):
        arrivals = arrivals or Arrivals()
        times: Sequence[float | None] = (
            arrivals.offsets(time_rng, len(chosen)) if arrivals.open_loop else [None] * len(chosen)
        )
    else:
        times = [r.arrival * time_scale for r in chosen if r.arrival is not None]
    builder = _PlanBuilder(context, policy)
    for record, when in zip(chosen, times, strict=True):
        builder.add(class_name, (record.input_tokens, record.output_tokens), True, when, rng.getrandbits(63))
    return builder.plan({class_name: slo})
