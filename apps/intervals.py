"""Figures measured over repeated runs: the median across the repeats with a 95% bootstrap confidence interval,
and when two such figures differ clearly.

scipy is not a dependency, so the bootstrap is numpy's percentile bootstrap: resample the repeats with
replacement, take each resample's median, and the interval runs from the 2.5th to the 97.5th percentile of those
medians. With few repeats it is coarse (with three it spans their range), which is what three runs can say. The
resampling is seeded, so the same results always give the same report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000


@dataclass(frozen=True, slots=True)
class Estimate:
    median: float
    low: float  # the interval; equal to the median for a single run
    high: float
    n: int  # how many runs it comes from (NaNs left out)

    @property
    def measurable(self) -> bool:
        return self.n > 0 and not math.isnan(self.median)

    @property
    def has_interval(self) -> bool:
        return self.n > 1

    def overlaps(self, other: Estimate) -> bool:
        return self.low <= other.high and other.low <= self.high

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.median * factor, self.low * factor, self.high * factor, self.n)

    def format(self, number: Callable[[float], str]) -> str:
        """`number` formats each value: "175 [160, 190]"; "175" from one run, or when the interval's ends print
        alike (every repeat gave 175)."""
        if not self.measurable:
            return "n/a"
        low, high = number(self.low), number(self.high)
        if not self.has_interval or low == high:
            return number(self.median)
        return f"{number(self.median)} [{low}, {high}]"


def estimate(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0) -> Estimate:
    """The median of `values` (one per repeat) and its percentile-bootstrap interval."""
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if array.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    median = float(np.median(array))
    if array.size == 1:
        return Estimate(median, median, median, 1)
    rng = np.random.default_rng(seed)
    resampled = np.median(rng.choice(array, size=(RESAMPLES, array.size), replace=True), axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Estimate(median, float(low), float(high), int(array.size))


def as_estimate(value: Estimate | float) -> Estimate:
    return value if isinstance(value, Estimate) else estimate([value])
