"""The links a KV cache crosses from a prefill node to a decode node (`--link`), read from `links.toml`.

A transfer of n bytes alone on a link takes latency + n / bandwidth; transfers at once share the bandwidth
(`transfer_seconds`). Plain data and arithmetic: pacing a real push by it is `pdsim.kv.link`'s job.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

from pdsim.core.emulation.hardware import Figure

DEFAULT_LINK = "infiniband-400g"


@dataclass(frozen=True, slots=True)
class Link:
    id: str
    name: str
    bandwidth: Figure  # bytes/s, one direction
    latency: Figure  # seconds per transfer

    def __post_init__(self) -> None:
        if self.bandwidth.value <= 0 or self.latency.value < 0:
            raise ValueError(f"link {self.id}: bandwidth must be > 0 and latency >= 0")

    def transfer_seconds(self, nbytes: float, sharing: int = 1) -> float:
        """n bytes alone, or with `sharing` transfers splitting the bandwidth evenly for the whole time."""
        return self.latency.value + nbytes * max(sharing, 1) / self.bandwidth.value


def _table() -> dict[str, dict[str, object]]:
    return tomllib.loads(resources.files(__package__).joinpath("links.toml").read_text())


def link_ids() -> list[str]:
    return sorted(_table())


def load_link(link_id: str) -> Link:
    table = _table()
    if link_id not in table:
        raise ValueError(f"unknown link {link_id!r}; links: {', '.join(sorted(table))}")
    entry = table[link_id]
    figures = {key: entry[key] for key in ("bandwidth", "latency")}
    for key, figure in figures.items():
        if not isinstance(figure, dict) or set(figure) != {"value", "source"}:
            raise ValueError(f'link {link_id}: {key} must be {{ value = N, source = "..." }}')
    return Link(
        link_id,
        str(entry["name"]),
        *(Figure(float(figures[key]["value"]), str(figures[key]["source"])) for key in ("bandwidth", "latency")),  # type: ignore[index]
    )
