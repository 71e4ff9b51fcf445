"""Medians with bootstrap intervals over repeats, and the verdict that calls overlapping intervals a tie."""

from __future__ import annotations

import math

import numpy as np

from apps.expectations import verdict
from apps.intervals import Estimate, estimate


def test_the_interval_of_a_known_distribution_covers_its_median_at_the_expected_width() -> None:
    # 400 draws from N(10, 2): the sample median's standard error is 1.2533 * 2 / sqrt(400) = 0.125, so a 95%
    # interval is about 2 * 1.96 * 0.125 = 0.49 wide around 10.
    values = np.random.default_rng(7).normal(10.0, 2.0, size=400).tolist()
    found = estimate(values)
    assert found.n == 400 and found.low < found.median < found.high
    assert found.median == float(np.median(values)) and abs(found.median - 10.0) < 0.4
    assert 0.3 < found.high - found.low < 0.75  # how often it covers the true median: the next test
    assert estimate(values) == found  # seeded: the same results give the same report


def test_coverage_over_many_samples_is_near_95_percent() -> None:
    rng = np.random.default_rng(11)
    covered = sum(estimate(rng.exponential(1.0, size=60).tolist(), seed=i).overlaps(_point(math.log(2)))
                  for i in range(200))  # fmt: skip
    assert 0.85 <= covered / 200 <= 0.99  # the exponential's median is ln 2


def _point(value: float) -> Estimate:
    return Estimate(value, value, value, 1)


def test_few_repeats_give_their_range_and_one_run_gives_no_interval() -> None:
    three = estimate([3.0, 1.0, 2.0])
    assert (three.median, three.low, three.high, three.n) == (2.0, 1.0, 3.0, 3)
    one = estimate([5.0])
    assert (one.low, one.high, one.has_interval) == (5.0, 5.0, False)
    assert not estimate([math.nan]).measurable and estimate([math.nan, 4.0]).n == 1
    assert three.format(lambda v: f"{v:.0f}") == "2 [1, 3]" and one.format(lambda v: f"{v:.0f}") == "5"
    assert estimate([1.0, 1.0, 1.0]).format(lambda v: f"{v:.0%}") == "100%"  # every repeat alike: no bracket


def test_repeated_figures_tie_when_their_intervals_overlap_not_by_a_fixed_margin() -> None:
    # Medians 50% apart, but the repeats scatter so widely that the intervals overlap: no clear difference.
    wide_a, wide_b = estimate([100.0, 150.0, 260.0]), estimate([80.0, 100.0, 120.0])
    assert verdict(wide_a, wide_b) == "no clear difference here (the 95% intervals overlap)"
    # Medians 5% apart, tight repeats, disjoint intervals: a clear difference, which the 10% rule would call a tie.
    tight_a, tight_b = estimate([105.0, 105.2, 104.9]), estimate([100.0, 100.1, 99.9])
    assert verdict(tight_a, tight_b) == "holds here"
    assert verdict(tight_b, tight_a) == "does **not** hold here"
    # Single runs keep the 10% rule, and say so.
    assert verdict(1.05, 1.0) == "no clear difference here (within 10%, one run)"
    assert verdict(estimate([1.05]), estimate([1.0, 1.0, 1.0])).startswith("no clear difference here (within 10%")
    assert verdict(math.nan, 1.0) == "not measurable here"
