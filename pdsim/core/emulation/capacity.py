"""How many tokens of KV cache fit on a profile once the weights are loaded.

Each of `tp` ranks holds 1/tp of the weights and 1/tp of every token's keys and values (its share of the KV
heads). Of a rank's memory only the profile's usable fraction is planned for: the rest is the stated reserve for
activations, the runtime and fragmentation (the same split vLLM's gpu_memory_utilization makes).
"""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.emulation.hardware import HardwareProfile
from pdsim.core.emulation.shape import ModelShape
from pdsim.core.kv_layout import DTYPE_BYTES, check_dtype_name


@dataclass(frozen=True, slots=True)
class KvCapacity:
    usable_bytes: float  # per rank: memory x usable fraction
    weight_bytes: float  # per rank
    kv_bytes_per_token: float  # per rank
    tokens: int  # across the tp group: each token's KV is spread over all ranks

    @property
    def kv_bytes(self) -> float:
        """Per rank, what is left for the KV cache."""
        return self.usable_bytes - self.weight_bytes


def kv_capacity(profile: HardwareProfile, shape: ModelShape, dtype: str, tp: int = 1) -> KvCapacity:
    """KV capacity in tokens; ValueError naming the tp that would fit when the weights alone do not."""
    shape.check_tensor_parallel(tp)
    element = DTYPE_BYTES[check_dtype_name(dtype)]
    usable = profile.memory_size.value * profile.usable_memory_fraction.value
    weights = shape.stored_params * element / tp
    if weights >= usable:
        fitting = [n for n in range(tp + 1, shape.kv_heads + 1) if _fits(profile, shape, element, n)]
        advice = f"use --tp {fitting[0]} or more" if fitting else "choose a device with more memory"
        raise ValueError(
            f"the weights need {weights / 1e9:.1f} GB per GPU in {dtype} at --tp {tp}, more than {profile.id}'s "
            f"usable {usable / 1e9:.1f} GB ({profile.usable_memory_fraction.value:g} of "
            f"{profile.memory_size.value / 1e9:g} GB); {advice}"
        )
    per_token = shape.kv_elements_per_token * element / tp
    return KvCapacity(usable, weights, per_token, int((usable - weights) // per_token))


def _fits(profile: HardwareProfile, shape: ModelShape, element: int, tp: int) -> bool:
    usable = profile.memory_size.value * profile.usable_memory_fraction.value
    return shape.heads % tp == 0 and shape.kv_heads % tp == 0 and shape.stored_params * element / tp < usable
