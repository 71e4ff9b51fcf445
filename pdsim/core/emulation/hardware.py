"""Hardware profiles: an accelerator's published peaks and the efficiencies real kernels reach on it.

The figures live in data files (`profiles/<id>.toml`, shipped with the package), one per accelerator, each number
with its source beside it; this module only reads and validates them. A profile knows nothing about models: the
cost model (`step_time`) combines the two.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pdsim.core.kv_layout import DTYPE_BYTES, check_dtype_name

EMULATED_PREFIX = "emulated:"


@dataclass(frozen=True, slots=True)
class Figure:
    """One number and where it comes from: a data sheet, a published measurement, or a stated assumption."""

    value: float
    source: str

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError(f"the figure {self.value} has no source")


@dataclass(frozen=True, slots=True)
class Interconnect:
    """The link tensor-parallel ranks all-reduce over: bandwidth per GPU in one direction, latency per collective."""

    name: str
    bandwidth: Figure  # bytes/s
    latency: Figure  # seconds

    def __post_init__(self) -> None:
        if self.bandwidth.value <= 0:
            raise ValueError(f"{self.name}: interconnect bandwidth must be > 0, got {self.bandwidth.value}")
        if self.latency.value < 0:
            raise ValueError(f"{self.name}: interconnect latency must be >= 0, got {self.latency.value}")


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    id: str
    name: str
    peak_flops: Mapping[str, Figure]  # dense (no sparsity) FLOP/s per dtype name
    memory_bandwidth: Figure  # bytes/s
    memory_size: Figure  # bytes
    usable_memory_fraction: Figure  # of memory_size, for weights and KV; the rest is activations and runtime
    interconnect: Interconnect
    flop_efficiency: Figure  # the fraction of peak FLOP/s real kernels reach
    bandwidth_efficiency: Figure  # the fraction of peak bandwidth real kernels reach
    step_overhead_s: Figure  # fixed seconds per step: launches, scheduling, sampling
    # Attention kernels may reach other fractions than GEMMs (a CPU's attention over a padded cache, say): when
    # absent, attention runs at the GEMMs' efficiencies. `pdsim calibrate` fits them.
    attention_flop_efficiency: Figure | None = None
    attention_bandwidth_efficiency: Figure | None = None

    def __post_init__(self) -> None:
        if set(self.peak_flops) != set(DTYPE_BYTES):
            raise ValueError(f"{self.id}: peak_flops needs {sorted(DTYPE_BYTES)}, got {sorted(self.peak_flops)}")
        named = dict(self.figures())
        for name in [*(f"peak {dtype} FLOP/s" for dtype in self.peak_flops), "memory bandwidth B/s", "memory size B"]:
            if named[name].value <= 0:
                raise ValueError(f"{self.id}: {name} must be > 0, got {named[name].value}")
        fractions = ["usable memory fraction", "flop efficiency", "bandwidth efficiency"]
        fractions += [name for name in ("attention flop efficiency", "attention bandwidth efficiency") if name in named]
        for name in fractions:
            if not 0 < named[name].value <= 1:
                raise ValueError(f"{self.id}: {name} must be in (0, 1], got {named[name].value}")
        if self.step_overhead_s.value < 0:
            raise ValueError(f"{self.id}: step overhead must be >= 0 s, got {self.step_overhead_s.value}")

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s in `dtype`."""
        return self.peak_flops[check_dtype_name(dtype)].value

    def figures(self) -> list[tuple[str, Figure]]:
        """Every number of the profile with its name, in the order `pdsim hardware` prints them."""
        return [
            *((f"peak {dtype} FLOP/s", figure) for dtype, figure in self.peak_flops.items()),
            ("memory bandwidth B/s", self.memory_bandwidth),
            ("memory size B", self.memory_size),
            ("usable memory fraction", self.usable_memory_fraction),
            ("interconnect B/s", self.interconnect.bandwidth),
            ("interconnect latency s", self.interconnect.latency),
            ("flop efficiency", self.flop_efficiency),
            ("bandwidth efficiency", self.bandwidth_efficiency),
            ("step overhead s", self.step_overhead_s),
            *self._attention_figures(),
        ]

    def _attention_figures(self) -> list[tuple[str, Figure]]:
        named = (("attention flop efficiency", self.attention_flop_efficiency),
                 ("attention bandwidth efficiency", self.attention_bandwidth_efficiency))  # fmt: skip
        return [(name, figure) for name, figure in named if figure is not None]

    @property
    def attention_efficiencies(self) -> tuple[float, float]:
        """(FLOP, bandwidth) efficiency of attention kernels: their own when fitted, else the GEMMs'."""
        flop = self.attention_flop_efficiency or self.flop_efficiency
        bandwidth = self.attention_bandwidth_efficiency or self.bandwidth_efficiency
        return flop.value, bandwidth.value


def profile_ids() -> list[str]:
    """The ids of the shipped profiles, sorted."""
    folder = resources.files(__package__).joinpath("profiles")
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_profile(device: str) -> HardwareProfile:
    """A shipped profile by id (`h100-sxm`, or `emulated:h100-sxm`), or any profile file by path."""
    profile_id = device.removeprefix(EMULATED_PREFIX)
    if profile_id.endswith(".toml"):
        return parse_profile(tomllib.loads(Path(profile_id).read_text()))
    if profile_id not in profile_ids():
        raise ValueError(f"unknown hardware profile {profile_id!r}; profiles: {', '.join(profile_ids())}")
    text = resources.files(__package__).joinpath("profiles", f"{profile_id}.toml").read_text()
    return parse_profile(tomllib.loads(text))


def parse_profile(data: Mapping[str, Any]) -> HardwareProfile:
    """A profile from a parsed TOML table; unknown or missing keys are refused, so typos do not pass silently."""
    profile_id = str(data.get("id", "?"))
    try:
        _expect_keys(profile_id, "the profile", data, {"id", "name", "peak_flops", "memory", "interconnect",
                                                       "efficiency"})  # fmt: skip
        memory, link, efficiency = data["memory"], data["interconnect"], data["efficiency"]
        _expect_keys(profile_id, "[memory]", memory, {"bandwidth", "size", "usable_fraction"})
        _expect_keys(profile_id, "[interconnect]", link, {"name", "bandwidth", "latency"})
        _expect_keys(profile_id, "[efficiency]", efficiency, {"flop", "bandwidth", "step_overhead_s"},
                     optional={"attention_flop", "attention_bandwidth"})  # fmt: skip
        return HardwareProfile(
            id=profile_id,
            name=str(data["name"]),
            peak_flops={dtype: _figure(profile_id, figure) for dtype, figure in data["peak_flops"].items()},
            memory_bandwidth=_figure(profile_id, memory["bandwidth"]),
            memory_size=_figure(profile_id, memory["size"]),
            usable_memory_fraction=_figure(profile_id, memory["usable_fraction"]),
            interconnect=Interconnect(
                str(link["name"]), _figure(profile_id, link["bandwidth"]), _figure(profile_id, link["latency"])
            ),
            flop_efficiency=_figure(profile_id, efficiency["flop"]),
            bandwidth_efficiency=_figure(profile_id, efficiency["bandwidth"]),
            step_overhead_s=_figure(profile_id, efficiency["step_overhead_s"]),
            attention_flop_efficiency=_optional_figure(profile_id, efficiency.get("attention_flop")),
            attention_bandwidth_efficiency=_optional_figure(profile_id, efficiency.get("attention_bandwidth")),
        )
    except (TypeError, AttributeError) as error:
        raise ValueError(f"hardware profile {profile_id!r} is malformed: {error}") from None


def _figure(profile_id: str, table: Any) -> Figure:
    if not isinstance(table, Mapping) or set(table) != {"value", "source"}:
        raise ValueError(f'{profile_id}: a figure is {{ value = N, source = "..." }}, got {table!r}')
    if isinstance(table["value"], bool) or not isinstance(table["value"], int | float):
        raise ValueError(f"{profile_id}: a figure's value must be a number, got {table['value']!r}")
    return Figure(float(table["value"]), str(table["source"]))


def _optional_figure(profile_id: str, table: Any) -> Figure | None:
    return None if table is None else _figure(profile_id, table)


def _expect_keys(
    profile_id: str,
    where: str,
    table: Mapping[str, Any],
    keys: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> None:
    if not keys <= set(table) <= keys | optional:
        extra = f" (and optionally {sorted(optional)})" if optional else ""
        raise ValueError(f"{profile_id}: {where} needs keys {sorted(keys)}{extra}, got {sorted(table)}")
