"""Fit a profile's efficiencies and fixed overhead to measured step times (what `pdsim calibrate` does).

Each measured step is its segments and its seconds. With the profile's peaks fixed (measured, or the vendor's),
the cost model's time of a step is a function of five numbers: the GEMMs' FLOP and bandwidth efficiencies,
attention's two, and the fixed overhead. The fit chooses them to minimise the squared error of log time over the
steps (so a 1 ms step weighs as much as a 1 s one), by coordinate descent over log-spaced grids that shrink around
the best point, from several starts: five parameters, each term a max of two roofs, no gradients to trust. Plain
Python.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from pdsim.core.emulation.costs import Segment, forward_cost
from pdsim.core.emulation.hardware import Figure, HardwareProfile
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.emulation.step_time import step_time

_GRID = 15  # points per parameter and sweep
_ROUNDS = 10  # each zooms in by _ZOOM around the best point so far
_SWEEPS = 2  # coordinate sweeps per round
_ZOOM = 2.0
# Where the descents start: the overhead and the weights' read time both add a constant to every decode step, so
# a descent may settle on either; starting from both sides and keeping the best finds the global fit.
_STARTS = [(eff, overhead) for eff in (0.05, 0.6) for overhead in (0.01, 0.3, 0.9)]


@dataclass(frozen=True, slots=True)
class MeasuredStep:
    name: str  # e.g. "decode b8 c512", for the error table
    segments: tuple[Segment, ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class Efficiencies:
    flop: float
    bandwidth: float
    attention_flop: float
    attention_bandwidth: float
    overhead_s: float

    def applied(self, profile: HardwareProfile, source: str) -> HardwareProfile:
        """`profile` with these figures, each citing `source`."""
        return replace(
            profile,
            flop_efficiency=Figure(self.flop, source),
            bandwidth_efficiency=Figure(self.bandwidth, source),
            attention_flop_efficiency=Figure(self.attention_flop, source),
            attention_bandwidth_efficiency=Figure(self.attention_bandwidth, source),
            step_overhead_s=Figure(self.overhead_s, source),
        )


@dataclass(frozen=True, slots=True)
class _Work:
    """A step's work, computed once: the GEMMs' and attention's FLOPs and bytes."""

    gemm_flops: float
    gemm_bytes: float
    attention_flops: float
    attention_bytes: float
    seconds: float


def _work(shape: ModelShape, dtype: str, step: MeasuredStep) -> _Work:
    cost = forward_cost(shape, step.segments, dtype)
    return _Work(
        cost.linear_flops + cost.head_flops,
        cost.weight_bytes,
        cost.attention_flops,
        cost.kv_read_bytes + cost.kv_write_bytes,
        step.seconds,
    )


def _predict(work: _Work, peak: float, bandwidth: float, e: Sequence[float]) -> float:
    # `step_time`'s sum at tp 1, on work computed once: the fit evaluates it for every step at every grid point.
    # tests/emulation/test_fit.py holds the two together (a fit to step_time's times predicts them within 1%).
    gemms = max(work.gemm_flops / (peak * e[0]), work.gemm_bytes / (bandwidth * e[1]))
    attention = max(work.attention_flops / (peak * e[2]), work.attention_bytes / (bandwidth * e[3]))
    return gemms + attention + e[4]


def fit_efficiencies(
    profile: HardwareProfile, shape: ModelShape, dtype: str, steps: Sequence[MeasuredStep]
) -> Efficiencies:
    """The efficiencies and overhead under which `profile`'s peaks best predict `steps`."""
    if len(steps) < 5:
        raise ValueError(f"fitting five parameters needs at least 5 measured steps, got {len(steps)}")
    works = [_work(shape, dtype, s) for s in steps]
    peak, bandwidth = profile.peak(dtype), profile.memory_bandwidth.value
    shortest = min(w.seconds for w in works)
    # Efficiencies in (0, 1]; the overhead from 0 to the shortest step. Log grids: both span decades.
    bounds = [(1e-4, 1.0)] * 4 + [(shortest * 1e-4, shortest)]

    def loss(e: Sequence[float]) -> float:
        return sum((math.log(_predict(w, peak, bandwidth, e)) - math.log(w.seconds)) ** 2 for w in works)

    fits = [_descend([eff] * 4 + [shortest * overhead], bounds, loss) for eff, overhead in _STARTS]
    return Efficiencies(*min(fits, key=loss))


def _descend(
    point: list[float], bounds: Sequence[tuple[float, float]], loss: Callable[[Sequence[float]], float]
) -> list[float]:
    """Coordinate descent over log-spaced grids around `point` that shrink each round."""
    span = [math.log(hi / lo) for lo, hi in bounds]
    for _ in range(_ROUNDS):
        for _ in range(_SWEEPS):
            for i, (lo, hi) in enumerate(bounds):
                centre = math.log(point[i])
                grid = [centre + span[i] * (k / (_GRID - 1) - 0.5) for k in range(_GRID)]
                candidates = [point[i], *(min(hi, max(lo, math.exp(g))) for g in grid)]
                point[i] = min(candidates, key=lambda v: loss([*point[:i], v, *point[i + 1 :]]))
        span = [s / _ZOOM for s in span]
    return point


def prediction_errors(
    profile: HardwareProfile, shape: ModelShape, dtype: str, steps: Sequence[MeasuredStep]
) -> list[float]:
    """(predicted - measured) / measured for each step, with the profile as it is."""
    return [(step_time(profile, shape, s.segments, dtype).seconds - s.seconds) / s.seconds for s in steps]


def error_summary(errors: Sequence[float]) -> tuple[float, float]:
    """Median and 90th percentile of |error|."""
    absolute = sorted(abs(e) for e in errors)
    p90 = absolute[min(len(absolute) - 1, math.ceil(0.9 * len(absolute)) - 1)]
    return statistics.median(absolute), p90


def recorded_steps(lines: Iterable[str], name: str = "served") -> list[MeasuredStep]:
    """Steps a serving node recorded (`--record-steps`: JSON lines of phase, seconds and segments)."""
    steps = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            segments = tuple(Segment(int(new), int(cached)) for new, cached in entry["segments"])
            steps.append(MeasuredStep(f"{name} {entry['phase']} #{number}", segments, float(entry["seconds"])))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{name} line {number} is not a recorded step: {error}") from None
    return steps


def split_held_out(
    steps: Sequence[MeasuredStep], every: int = 5, most: int = 300
) -> tuple[list[MeasuredStep], list[MeasuredStep]]:
    """(to fit on, held out): every `every`-th step held out, each set thinned evenly to at most `most` steps."""
    train = [s for i, s in enumerate(steps) if i % every]
    held = [s for i, s in enumerate(steps) if not i % every]
    return _thinned(train, most), _thinned(held, most)


def _thinned(steps: Sequence[MeasuredStep], most: int) -> list[MeasuredStep]:
    stride = max(1, math.ceil(len(steps) / most))
    return list(steps[::stride])
