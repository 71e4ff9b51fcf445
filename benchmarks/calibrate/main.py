"""`pdsim calibrate`: measure this device's roofs and step times with pdsim's own runner, fit a profile's
efficiencies and overhead to them (`pdsim.core.emulation.fit`), check it on held-out shapes, and write it.

The profile then runs emulated nodes (`--device emulated:<path>`) that take the steps this device takes: the
emulated twin of a real cluster (`python -m benchmarks.emulation fidelity`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.calibrate.config import CalibrateConfig, Shape
from pdsim.core.emulation.fit import (
    Efficiencies,
    MeasuredStep,
    error_summary,
    fit_efficiencies,
    prediction_errors,
)
from pdsim.core.emulation.hardware import Figure, HardwareProfile, Interconnect
from pdsim.core.emulation.profile_file import write_profile
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.kv_layout import DTYPE_BYTES

_MOST_ROWS = 40  # a step set longer than this is summarized, not listed


@dataclass(frozen=True, slots=True)
class Calibration:
    profile: HardwareProfile
    shape: ModelShape
    fitted: Efficiencies
    train: list[MeasuredStep]
    held_out: list[MeasuredStep]
    dtype: str

    def errors(self, steps: Sequence[MeasuredStep]) -> list[float]:
        return prediction_errors(self.profile, self.shape, self.dtype, steps)


def measure_steps(runner: Any, shapes: Sequence[Shape], repeats: int, device: Any) -> list[MeasuredStep]:
    """The median time of each shape's step on pdsim's runner (decodes in slots 0.., prompts after them)."""
    import statistics

    import torch

    from benchmarks.phases.peaks import timed
    from benchmarks.phases.timing import GREEDY
    from pdsim.engine.step import DecodeRow, PrefillRow, StepInput

    generator = torch.Generator().manual_seed(0)
    steps = []
    for shape in shapes:
        decodes = [DecodeRow(1, shape.context, GREEDY) for _ in range(shape.decodes)]
        prompts = torch.randint(0, 256, (shape.prefills, max(shape.length, 1)), generator=generator).tolist()
        chunks = [PrefillRow(shape.decodes + i, prompt, GREEDY) for i, prompt in enumerate(prompts)]
        step = StepInput(decodes, chunks if shape.prefills else ())
        times = [timed(partial(runner.run, step), device)[1] for _ in range(repeats + 1)][1:]
        steps.append(MeasuredStep(shape.name, step.segments(), statistics.median(times)))
    return steps


def device_profile(config: CalibrateConfig, log: Callable[[str], object]) -> HardwareProfile:
    """This device's measured roofs, as a profile whose efficiencies are yet to be fitted."""
    import torch

    from benchmarks.phases.peaks import device_name, measure_peaks

    device = torch.device(config.model.device)
    name = device_name(device)
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    measured = f"measured by pdsim calibrate on {name} ({config.threads} thread(s)), {today}"
    peaks = {}
    sizes = {}
    for dtype in DTYPE_BYTES:
        # The run's dtype at full size; the others, which a profile must also state, on a smaller matmul: a CPU
        # without 16-bit units takes minutes over a 2048^2 float16 one.
        sizes[dtype] = config.matmul_size if dtype == config.model.dtype else min(config.matmul_size, 512)
        found = measure_peaks(device, dtype, sizes[dtype], config.copy_mib * 2**20)
        peaks[dtype] = found
        log(f"roofs in {dtype}: {found.flops_per_s / 1e9:,.1f} GFLOP/s, {found.bytes_per_s / 1e9:,.1f} GB/s")
    bandwidth = max(p.bytes_per_s for p in peaks.values())
    memory, memory_source = _memory_size(device)
    unfitted = Figure(1.0, "placeholder until fitted")
    return HardwareProfile(
        id=config.output_path.stem,
        name=f"{name} ({config.threads} thread(s)), calibrated for {config.model.model} in {config.model.dtype}",
        peak_flops={dtype: Figure(p.flops_per_s, f"{measured}: {sizes[dtype]}^2 matmul") for dtype, p in peaks.items()},
        memory_bandwidth=Figure(bandwidth, f"{measured}: {config.copy_mib} MiB copy"),
        memory_size=Figure(memory, memory_source),
        usable_memory_fraction=Figure(0.9, "assumption: as vLLM's gpu_memory_utilization default"),
        interconnect=Interconnect(
            "shared memory" if device.type == "cpu" else f"{name} host link",
            Figure(bandwidth, f"{measured}: the memory copy's bandwidth"),
            Figure(5e-6, "assumption: ~5 us to start a copy between processes on one host"),
        ),
        flop_efficiency=unfitted,
        bandwidth_efficiency=unfitted,
        step_overhead_s=Figure(0.0, "placeholder until fitted"),
    )


def _memory_size(device: Any) -> tuple[float, str]:
    import torch

    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[1]), "torch.cuda.mem_get_info: the device's total memory"
    return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "the host's physical memory (sysconf)"


def run_calibrate(config: CalibrateConfig, log: Callable[[str], object] = print) -> Calibration:
    import torch

    from pdsim.engine.build import build_runner, load_engine_model

    torch.set_num_threads(config.threads)
    device = torch.device(config.model.device)
    log(f"calibrating {config.model.device} ({platform.processor() or platform.machine()}) for "
        f"{config.model.model} in {config.model.dtype}, {config.threads} thread(s)")  # fmt: skip
    base = device_profile(config, log)
    model, info = load_engine_model(config.model)
    hf_config: Any = model.config
    shape = ModelShape.from_config(hf_config.to_dict())
    runner = build_runner(model, info, config.model, config.slots, config.tokens, "measure fewer or smaller shapes")
    train = measure_steps(runner, config.train, config.repeats, device)
    held_out = measure_steps(runner, config.held_out, config.repeats, device)
    return _fit_and_write(config, base, shape, train, held_out, "measured steps")


def _fit_and_write(
    config: CalibrateConfig,
    base: HardwareProfile,
    shape: ModelShape,
    train: list[MeasuredStep],
    held_out: list[MeasuredStep],
    steps: str,
) -> Calibration:
    """Fit `base`'s efficiencies to `train` (described as `steps` in every figure's source) and write the profile."""
    fitted = fit_efficiencies(base, shape, config.model.dtype, train)
    source = (
        f"fitted by pdsim calibrate to {len(train)} {steps} of {config.model.model} ({config.model.dtype}), "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    calibration = Calibration(fitted.applied(base, source), shape, fitted, train, held_out, config.model.dtype)
    write_profile(calibration.profile, config.output_path)
    return calibration


def format_calibration(calibration: Calibration, path: str) -> str:
    e = calibration.fitted
    lines = [
        f"fitted: GEMMs {e.flop:.3f} of peak FLOP/s, {e.bandwidth:.3f} of peak bandwidth; attention "
        f"{e.attention_flop:.3f} and {e.attention_bandwidth:.3f}; {e.overhead_s * 1000:.2f} ms per step",
        f"{'step':<34} {'set':<9} {'measured ms':>11} {'predicted ms':>12} {'error':>7}",
    ]
    sets = [(label, steps, calibration.errors(steps))
            for label, steps in (("fitted", calibration.train), ("held-out", calibration.held_out))]  # fmt: skip
    for label, steps, errors in sets:
        if len(steps) > _MOST_ROWS:  # steps recorded while serving: hundreds; their summary says it
            continue
        for step, error in zip(steps, errors, strict=True):
            predicted = step.seconds * (1 + error)
            lines.append(
                f"{step.name:<34} {label:<9} {step.seconds * 1000:>11.2f} {predicted * 1000:>12.2f} {error:>+7.1%}"
            )
    for label, steps, errors in sets:
        median, p90 = error_summary(errors)
        lines.append(f"{label} steps: median |error| {median:.1%}, p90 {p90:.1%} ({len(steps)} shapes)")
    lines.append(f"profile: {path} (use it as --device emulated:{path})")
    return "\n".join(lines)


def calibrate_from_steps(
    config: CalibrateConfig,
    files: Sequence[Path],
    log: Callable[[str], object] = print,
    base: HardwareProfile | None = None,
) -> Calibration:
    """Fit to steps serving nodes recorded (`--record-steps`), every fifth held out, on `base`'s roofs (default:
    measured here now)."""
    import torch

    from pdsim.core.emulation.fit import recorded_steps, split_held_out
    from pdsim.core.emulation.models import load_model_config

    torch.set_num_threads(config.threads)
    steps = [step for path in files for step in recorded_steps(path.read_text().splitlines(), path.stem)]
    if not steps:
        raise ValueError(f"no recorded steps in {', '.join(map(str, files))}")
    train, held_out = split_held_out(steps)
    log(f"{len(steps)} recorded steps from {len(files)} file(s): fitting on {len(train)}, {len(held_out)} held out")
    base = base or device_profile(config, log)
    shape = load_model_config(config.model.model).shape
    served = f"steps recorded while serving ({', '.join(p.name for p in files)})"
    return _fit_and_write(config, base, shape, train, held_out, served)
