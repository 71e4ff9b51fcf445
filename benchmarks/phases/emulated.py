"""The phase benchmark on an emulated device (`--emulate emulated:h100-sxm`): every point predicted by the cost
model instead of measured, drawn on the profile's roofs. Torch-free: nothing runs but arithmetic.

The "measured" roofs of a real run become the profile's reachable ones (peaks x its efficiencies), and the spec
sheet's are its published peaks, so the plot shows where each predicted step sits between the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from benchmarks.phases import report
from benchmarks.phases.config import PhasesConfig
from benchmarks.phases.points import Headline, Point, cost_point, generation_point
from benchmarks.phases.roofline_plot import plot_roofline
from benchmarks.phases.roofs import Peaks
from pdsim.core.emulation.costs import decode_cost, prefill_cost
from pdsim.core.emulation.hardware import HardwareProfile, load_profile
from pdsim.core.emulation.models import load_model_config
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.emulation.step_time import decode_step, prefill_step


def _prefill(profile: HardwareProfile, shape: ModelShape, dtype: str, batch: int, length: int) -> Point:
    seconds = prefill_step(profile, shape, [length] * batch, dtype).seconds
    return cost_point("prefill", batch, length, 1, seconds, batch * length, prefill_cost(shape, batch, length, dtype))


def _decode(profile: HardwareProfile, shape: ModelShape, dtype: str, batch: int, context: int) -> Point:
    seconds = decode_step(profile, shape, [context] * batch, dtype).seconds
    return cost_point("decode", batch, context, 1, seconds, batch, decode_cost(shape, batch, context, dtype))


def _headline(profile: HardwareProfile, shape: ModelShape, dtype: str, c: PhasesConfig) -> Headline:
    prefill = _prefill(profile, shape, dtype, c.requests, c.input_tokens)
    steps = [_decode(profile, shape, dtype, c.requests, c.input_tokens + i) for i in range(c.output_tokens - 1)]
    return Headline(prefill, generation_point(steps), tuple(p.seconds for p in steps))


def run_emulated_phases(config: PhasesConfig, device: str, log: Callable[[str], object] = print) -> dict[str, Any]:
    c = config
    profile = load_profile(device)
    model = load_model_config(c.model.model)
    shape, dtype = model.shape, c.model.dtype
    reachable = Peaks(profile.peak(dtype) * profile.flop_efficiency.value,
                      profile.memory_bandwidth.value * profile.bandwidth_efficiency.value,
                      f"{profile.id} at its efficiencies")  # fmt: skip
    published = Peaks(profile.peak(dtype), profile.memory_bandwidth.value, f"{profile.name}, published")
    headline = _headline(profile, shape, dtype, c)
    prefill = [_prefill(profile, shape, dtype, b, n) for n in c.prefill_lengths for b in c.prefill_batches]
    decode = [_decode(profile, shape, dtype, b, n) for n in c.contexts for b in c.batches]
    results: dict[str, Any] = {
        "setup": {
            "model": model.name,
            "device": f"emulated:{profile.id}",
            "device_name": profile.name,
            "dtype": dtype,
            "predicted": True,
            "shape": {f: getattr(shape, f) for f in shape.__dataclass_fields__},
            "requests": c.requests,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
        },
        "peaks": {"measured": report.peaks_record(reachable), "spec": report.peaks_record(published)},
        "headline": report.headline_record(headline, reachable, published),
        "prefill": [report.point_record(p, reachable, published) for p in prefill],
        "decode": [report.point_record(p, reachable, published) for p in decode],
        "mixed": [],
        "claims": report.claims(headline, decode),
    }
    c.output.mkdir(parents=True, exist_ok=True)
    (c.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    title = f"{model.name} {dtype} on emulated {profile.name} (predicted)"
    plot_roofline(c.output / "roofline.png", prefill, decode, headline, reachable, published, title)
    log(f"predicted on emulated:{profile.id} (the cost model; nothing was run)")
    log(report.format_table(results["prefill"] + results["decode"]))
    log(report.format_claims(results["claims"]))
    log(f"\nresults: {c.output / 'results.json'}, {c.output / 'roofline.png'}")
    return results
