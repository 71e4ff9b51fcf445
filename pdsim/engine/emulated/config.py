"""How an emulated node models its device beyond the profile: tensor parallelism, its KV link and time dilation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdsim.core.emulation.links import DEFAULT_LINK, link_ids

# Emulated time runs this many times slower than the wall clock unless told otherwise: measured with
# `python -m benchmarks.emulation_overhead` (see the README's emulation section) so that the router's, gRPC's
# and the load generator's Python overhead per token stays small next to modeled steps of a few milliseconds.
DEFAULT_DILATION = 10.0


@dataclass(frozen=True, slots=True)
class EmulationConfig:
    tp: int = 1  # tensor-parallel ranks per node: work / tp plus two all-reduces a layer
    link: str = DEFAULT_LINK  # what pushed KV crosses (prefill side), `pdsim.core.emulation.links`
    dilation: float = DEFAULT_DILATION  # wall seconds per emulated second

    def __post_init__(self) -> None:
        if self.tp < 1:
            raise ValueError(f"tp must be >= 1, got {self.tp}")
        if self.link not in link_ids():
            raise ValueError(f"unknown link {self.link!r}; links: {', '.join(link_ids())}")
        if not (math.isfinite(self.dilation) and self.dilation >= 1):
            raise ValueError(f"dilation must be a number >= 1, got {self.dilation}")
