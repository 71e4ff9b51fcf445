"""The modeled time of one step on a hardware profile: the roofline per part, plus all-reduces and a fixed overhead.

A step's forward (see `costs`) splits into parts that run as separate kernels: the GEMMs (every weight read
once for the whole batch, FLOPs for every new token) and attention (QK^T and AV over the cached context, every
cached key and value read once). Each part takes max(FLOPs / (peak x flop efficiency), bytes / (bandwidth x
bandwidth efficiency)) and is bound by whichever roof that is; the parts add up, as kernels run one after another.
Attention runs at the profile's attention efficiencies when it has them (`pdsim calibrate` fits them).

Tensor parallelism over `tp` ranks (Megatron style) divides each part's FLOPs and bytes by `tp` and adds two
all-reduces a layer (after attention's output projection and after the MLP) of the step's activations, tokens x
hidden elements, each a ring all-reduce: 2(tp - 1)/tp x bytes / link bandwidth + the link's latency. They are not
overlapped with compute. Then the profile's fixed step overhead. Elementwise work, the LM head's logit gather and
the sampler are left out, as in `costs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from pdsim.core.emulation.costs import Segment, forward_cost
from pdsim.core.emulation.hardware import Figure, HardwareProfile
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.kv_layout import DTYPE_BYTES


class Roof(StrEnum):
    COMPUTE = "compute"
    MEMORY = "memory"
    INTERCONNECT = "interconnect"
    OVERHEAD = "overhead"


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a step on one rank: its work and the time the roof that binds it allows."""

    name: str
    flops: float
    bytes: float
    seconds: float
    roof: Roof


@dataclass(frozen=True, slots=True)
class StepEstimate:
    parts: tuple[Part, ...]
    new_tokens: int  # tokens the step computes: prompt tokens in a prefill, one per row in a decode step
    tp: int

    @property
    def seconds(self) -> float:
        return sum(part.seconds for part in self.parts)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds

    @property
    def bound(self) -> Roof:
        """The roof the step spends most of its time against."""
        by_roof = {roof: sum(p.seconds for p in self.parts if p.roof is roof) for roof in Roof}
        return max(by_roof, key=lambda roof: by_roof[roof])


def step_time(
    profile: HardwareProfile, shape: ModelShape, segments: Sequence[Segment], dtype: str, tp: int = 1
) -> StepEstimate:
    """One forward over `segments` (packed, no padding) on `tp` ranks of `profile`."""
    shape.check_tensor_parallel(tp)
    cost = forward_cost(shape, segments, dtype)
    tokens = sum(s.new for s in segments)
    kv_bytes = cost.kv_read_bytes + cost.kv_write_bytes
    gemm_efficiencies = (profile.flop_efficiency.value, profile.bandwidth_efficiency.value)
    parts = [
        _roofline(profile, dtype, "gemms", (cost.linear_flops + cost.head_flops) / tp, cost.weight_bytes / tp,
                  gemm_efficiencies),
        _roofline(profile, dtype, "attention", cost.attention_flops / tp, kv_bytes / tp,
                  profile.attention_efficiencies),
    ]  # fmt: skip
    if tp > 1:
        parts.append(_all_reduces(profile, shape, tokens * shape.hidden * DTYPE_BYTES[dtype], tp))
    parts.append(Part("overhead", 0.0, 0.0, profile.step_overhead_s.value, Roof.OVERHEAD))
    return StepEstimate(tuple(parts), tokens, tp)


def prefill_step(
    profile: HardwareProfile, shape: ModelShape, prompts: Sequence[int], dtype: str, tp: int = 1
) -> StepEstimate:
    """A prefill batch: one segment per prompt length, nothing cached."""
    return step_time(profile, shape, [Segment(p) for p in prompts], dtype, tp)


def decode_step(
    profile: HardwareProfile, shape: ModelShape, contexts: Sequence[int], dtype: str, tp: int = 1
) -> StepEstimate:
    """A decode batch: one new token per row on top of its `context` cached tokens."""
    return step_time(profile, shape, [Segment(1, c) for c in contexts], dtype, tp)


def mixed_step(
    profile: HardwareProfile,
    shape: ModelShape,
    contexts: Sequence[int],
    chunks: Sequence[tuple[int, int]],
    dtype: str,
    tp: int = 1,
) -> StepEstimate:
    """A chunked-prefill step: decode rows (`contexts`) and prefill chunks of (chunk tokens, cached prefix)."""
    segments = [Segment(1, c) for c in contexts] + [Segment(new, cached) for new, cached in chunks]
    return step_time(profile, shape, segments, dtype, tp)


def at_peak(profile: HardwareProfile) -> HardwareProfile:
    """The profile with every efficiency 1 and no overhead: the roofline's ceiling, which no real step reaches."""
    full = Figure(1.0, "ideal: 100% of the published peak")
    return replace(
        profile, flop_efficiency=full, bandwidth_efficiency=full, step_overhead_s=Figure(0.0, "ideal"),
        attention_flop_efficiency=None, attention_bandwidth_efficiency=None,
    )  # fmt: skip


def _roofline(
    profile: HardwareProfile, dtype: str, name: str, flops: float, nbytes: float, efficiencies: tuple[float, float]
) -> Part:
    flop_efficiency, bandwidth_efficiency = efficiencies
    compute = flops / (profile.peak(dtype) * flop_efficiency)
    memory = nbytes / (profile.memory_bandwidth.value * bandwidth_efficiency)
    return Part(name, flops, nbytes, max(compute, memory), Roof.COMPUTE if compute > memory else Roof.MEMORY)


def _all_reduces(profile: HardwareProfile, shape: ModelShape, nbytes: int, tp: int) -> Part:
    link = profile.interconnect
    one = 2 * (tp - 1) / tp * nbytes / link.bandwidth.value + link.latency.value
    count = 2 * shape.layers
    return Part("all-reduce", 0.0, float(count * nbytes), count * one, Roof.INTERCONNECT)
