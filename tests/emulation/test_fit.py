"""Fitting a profile to measured steps, and writing it where `load_profile` reads it back."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pdsim.core.emulation.costs import Segment
from pdsim.core.emulation.fit import (
    Efficiencies,
    MeasuredStep,
    error_summary,
    fit_efficiencies,
    prediction_errors,
)
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.profile_file import write_profile
from pdsim.core.emulation.step_time import step_time

SMALL = load_model_config("small").shape
BASE = load_profile("m3-max")
TRUTH = Efficiencies(flop=0.4, bandwidth=0.55, attention_flop=0.08, attention_bandwidth=0.3, overhead_s=2e-3)
SHAPES = [
    *([Segment(n)] * b for b, n in ((1, 32), (1, 512), (4, 128), (1, 1024), (8, 64))),
    *([Segment(1, c)] * b for b, c in ((1, 16), (8, 1024), (32, 128), (16, 2048), (4, 512))),
    [Segment(1, 512)] * 8 + [Segment(128)],
]


def _steps(noise: float) -> list[MeasuredStep]:
    truth = TRUTH.applied(BASE, "synthetic")
    rng = random.Random(1)
    return [
        MeasuredStep(f"shape {i}", tuple(s), step_time(truth, SMALL, s, "bfloat16").seconds * (1 + rng.gauss(0, noise)))
        for i, s in enumerate(SHAPES)
    ]


def test_the_fit_recovers_the_efficiencies_that_made_the_times() -> None:
    fitted = fit_efficiencies(BASE, SMALL, "bfloat16", _steps(noise=0.0))
    errors = prediction_errors(fitted.applied(BASE, "fit"), SMALL, "bfloat16", _steps(noise=0.0))
    assert max(abs(e) for e in errors) < 0.01
    assert fitted.overhead_s == pytest.approx(TRUTH.overhead_s, rel=0.1)
    assert fitted.bandwidth == pytest.approx(TRUTH.bandwidth, rel=0.1)


def test_with_noise_the_fit_predicts_within_the_noise() -> None:
    steps = _steps(noise=0.05)
    fitted = fit_efficiencies(BASE, SMALL, "bfloat16", steps)
    median, p90 = error_summary(prediction_errors(fitted.applied(BASE, "fit"), SMALL, "bfloat16", steps))
    assert median < 0.06 and p90 < 0.12
    # A profile far off predicts far worse: the errors measure something.
    assert error_summary(prediction_errors(BASE, SMALL, "bfloat16", steps))[0] > 0.3


def test_too_few_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 measured steps, got 2"):
        fit_efficiencies(BASE, SMALL, "bfloat16", _steps(0.0)[:2])


def test_a_written_profile_loads_back_with_every_figure_and_source(tmp_path: Path) -> None:
    profile = TRUTH.applied(BASE, 'fitted by a "test", today')
    loaded = load_profile(str(write_profile(profile, tmp_path / "fitted.toml")))
    assert loaded.figures() == profile.figures()
    assert loaded.attention_efficiencies == (0.08, 0.3)
    assert all(figure.source for _, figure in loaded.figures())
