"""How an emulated node models its device beyond the profile: tensor parallelism, its KV link and time dilation."""

from __future__ import annotations

from dataclasses import dataclass

from pdsim.core.emulation.dilation import check_dilation
from pdsim.core.emulation.links import DEFAULT_LINK, link_ids

# Emulated time runs this many times slower than the wall clock unless told otherwise, so that the router's,
# gRPC's and the engine loop's Python stays small next to modeled steps of a few milliseconds. Measured with
# `python -m benchmarks.emulation overhead` (Llama-3.1-8B on emulated H100s, chat at 100 req/s; the README has
# the table): at 10 the nodes' steps ran 0.2-0.3% over their modeled time, and TPOT medians were within 1% of
# those at 40 for 4 colocated nodes and for 2 prefill + 2 decode; TTFT within 1% and 8% (0.6 ms). 16 nodes at
# 400 req/s need 20.
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
        check_dilation(self.dilation)
