"""`pdsim estimate`: the modeled time of one step of a model on an emulated accelerator, and its KV capacity.

A calculator over `pdsim.core.emulation`: it runs nothing and needs no weights or torch. Its last line is
`tokens/s: N`, for scripts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from pdsim.core.emulation.capacity import kv_capacity
from pdsim.core.emulation.hardware import HardwareProfile, load_profile
from pdsim.core.emulation.models import load_model_config, model_names
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.emulation.step_time import StepEstimate, at_peak, decode_step, mixed_step, prefill_step
from pdsim.core.kv_layout import DTYPE_BYTES, check_dtype_name

PHASES = ("decode", "prefill", "mixed")


@dataclass(frozen=True, slots=True)
class EstimateConfig:
    """One step to model. decode: `batch` rows with `context` cached each. prefill: `batch` prompts of `prompt`
    tokens. mixed: the decode rows plus one prefill chunk of `prompt` tokens after `prefix` cached ones."""

    device: str = "emulated:h100-sxm"
    model: str = "llama-3.1-8b"
    phase: str = "decode"
    batch: int = 1
    context: int = 1024
    prompt: int = 2048
    prefix: int = 0
    tp: int = 1
    dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        check_dtype_name(self.dtype)
        for name in ("batch", "prompt", "tp"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("context", "prefix"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


_DEFAULTS = EstimateConfig()


def add_estimate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=_DEFAULTS.device, help="emulated:ID (see `pdsim hardware`) or a .toml")
    parser.add_argument("--model", default=_DEFAULTS.model, help=f"{', '.join(model_names())} or a config.json path")
    parser.add_argument("--phase", default=_DEFAULTS.phase, choices=PHASES)
    parser.add_argument("--batch", type=int, default=_DEFAULTS.batch, help="decode rows, or prompts in a prefill")
    parser.add_argument("--context", type=int, default=_DEFAULTS.context, help="tokens cached per decode row")
    parser.add_argument("--prompt", type=int, default=_DEFAULTS.prompt, help="prefill: prompt (mixed: chunk) tokens")
    parser.add_argument("--prefix", type=int, default=_DEFAULTS.prefix, help="mixed: tokens cached before the chunk")
    parser.add_argument("--tp", type=int, default=_DEFAULTS.tp, help="tensor-parallel ranks")
    parser.add_argument("--dtype", default=_DEFAULTS.dtype, choices=list(DTYPE_BYTES))


def estimate_config_from(args: argparse.Namespace) -> EstimateConfig:
    return EstimateConfig(args.device, args.model, args.phase, args.batch, args.context, args.prompt, args.prefix,
                          args.tp, args.dtype)  # fmt: skip


def run_estimate(config: EstimateConfig) -> int:
    for line in estimate_lines(config):
        print(line)
    return 0


def estimate_lines(config: EstimateConfig) -> list[str]:
    profile = load_profile(config.device)
    model = load_model_config(config.model)
    shape = model.shape
    capacity = kv_capacity(profile, shape, config.dtype, config.tp)
    step, what, kv_tokens, longest = _step(config, profile, shape)
    ceiling = _step(config, at_peak(profile), shape)[0]
    if longest > model.max_context:
        raise ValueError(f"a sequence of {longest} tokens exceeds {model.name}'s max context ({model.max_context})")
    if kv_tokens > capacity.tokens:
        raise ValueError(f"the step holds {kv_tokens} KV tokens, more than the {capacity.tokens} that fit")
    lines = [
        f"device:      {profile.id} ({profile.name}), tp {config.tp}",
        f"model:       {model.name} ({shape.stored_params / 1e9:.2f}B parameters), {config.dtype}",
        f"step:        {what}",
        f"{'part':<13}{'GFLOP':>12}{'GB moved':>12}{'time ms':>11}  bound",
    ]
    for part in step.parts:
        lines.append(f"{part.name:<13}{part.flops / 1e9:>12.2f}{part.bytes / 1e9:>12.3f}"
                     f"{part.seconds * 1e3:>11.3f}  {part.roof}")  # fmt: skip
    lines += [
        f"step time:   {step.seconds * 1e3:.3f} ms, bound by {step.bound}",
        f"at peak:     {ceiling.tokens_per_s:.1f} tokens/s (100% of both roofs, no overhead: the ceiling)",
        f"KV capacity: {capacity.tokens:,} tokens ({capacity.usable_bytes / 1e9:.1f} GB usable per GPU - "
        f"{capacity.weight_bytes / 1e9:.1f} GB weights, {capacity.kv_bytes_per_token:,.0f} B per token per GPU)",
        f"tokens/s: {step.tokens_per_s:.1f}",
    ]
    return lines


def _step(c: EstimateConfig, profile: HardwareProfile, shape: ModelShape) -> tuple[StepEstimate, str, int, int]:
    """The modeled step, its description, the KV tokens it holds, and its longest sequence."""
    if c.phase == "decode":
        step = decode_step(profile, shape, [c.context] * c.batch, c.dtype, c.tp)
        return step, f"decode, batch {c.batch}, context {c.context}", c.batch * (c.context + 1), c.context + 1
    if c.phase == "prefill":
        step = prefill_step(profile, shape, [c.prompt] * c.batch, c.dtype, c.tp)
        return step, f"prefill, batch {c.batch}, prompt {c.prompt}", c.batch * c.prompt, c.prompt
    step = mixed_step(profile, shape, [c.context] * c.batch, [(c.prompt, c.prefix)], c.dtype, c.tp)
    what = f"mixed, {c.batch} decode rows at context {c.context} + a {c.prompt}-token chunk after {c.prefix} cached"
    held = c.batch * (c.context + 1) + c.prefix + c.prompt
    return step, what, held, max(c.context + 1, c.prefix + c.prompt)
