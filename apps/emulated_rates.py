"""What `make compare` runs on emulated devices by default: rates from the cost model (a CPU's 0.5-2 req/s would
leave an emulated H100 idle, and a sweep must straddle the cluster's knee to show anything), shorter runs and two
arms (an emulated second takes `dilation` wall seconds).

The estimate is one device's throughput on the mix's mean request: its prefill alone, then its output tokens
decoded in full batches of `max_batch` at the request's mean context, the whole cluster's devices at once.
It ignores queueing and the prefill/decode interference the experiment is there to measure, so it overstates
what SLOs allow; the sweep runs fractions of it around the knee (`RATE_FRACTIONS`).
"""

from __future__ import annotations

import random
import statistics

from loadgen.mix import load_mix
from pdsim.core.emulation.hardware import load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.step_time import decode_step, prefill_step
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.models.spec import ModelSpec

RATE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
MAIN_FRACTION = 0.5
# An emulated run's other defaults: each rate sends for this many emulated seconds (x the dilation on the wall
# clock), and the arms are the baseline the literature says disaggregation must beat against disaggregation.
EMULATED_DURATION = 5.0
EMULATED_ARMS = ("colocated", "disaggregated")
_SAMPLES = 2000


def mean_lengths(mix_name: str, seed: int = 0) -> tuple[float, float]:
    """The mix's mean input and output tokens, over a fixed sample of its requests."""
    mix = load_mix(mix_name)
    rng = random.Random(seed)
    classes = rng.choices(mix.classes, weights=[c.weight for c in mix.classes], k=_SAMPLES)
    return statistics.fmean(c.input.sample(rng) for c in classes), statistics.fmean(
        c.output.sample(rng) for c in classes
    )


def device_capacity(model: ModelSpec, emulation: EmulationConfig, mix_name: str, max_batch: int) -> float:
    """Requests per second one emulated device serves on the mix's mean request, at best."""
    assert model.emulated_profile is not None, model.device
    profile = load_profile(model.emulated_profile)
    shape = load_model_config(model.model).shape
    prompt, output = mean_lengths(mix_name)
    prefill = prefill_step(profile, shape, [round(prompt)], model.dtype, emulation.tp).seconds
    context = round(prompt + output / 2)
    step = decode_step(profile, shape, [context] * max_batch, model.dtype, emulation.tp).seconds
    return 1.0 / (prefill + output * step / max_batch)


def emulated_rates(
    model: ModelSpec, emulation: EmulationConfig, mix_name: str, max_batch: int, devices: int
) -> tuple[float, tuple[float, ...]]:
    """(main rate, sweep) in requests per emulated second, rounded to two significant figures."""
    capacity = devices * device_capacity(model, emulation, mix_name, max_batch)
    return _round(MAIN_FRACTION * capacity), tuple(_round(f * capacity) for f in RATE_FRACTIONS)


def _round(rate: float) -> float:
    return float(f"{rate:.2g}")
