"""The link model: latency + bytes / bandwidth alone, the bandwidth shared by transfers at once, x dilation."""

from __future__ import annotations

import asyncio
import time

import pytest

from pdsim.core.emulation.hardware import Figure
from pdsim.core.emulation.links import Link, link_ids, load_link
from pdsim.kv.link import SharedLink

SLOW = Link("test", "a slow test link", Figure(1e9, "test"), Figure(0.01, "test"))  # 1 GB/s, 10 ms


def test_every_shipped_link_loads_with_sources() -> None:
    assert {"nvlink", "infiniband-400g", "infiniband-200g", "roce-100g", "pcie", "ethernet-10g", "ethernet-25g"} <= set(
        link_ids()
    )
    for link_id in link_ids():
        link = load_link(link_id)
        assert link.bandwidth.source and link.latency.source
    assert load_link("infiniband-400g").transfer_seconds(50e9) == pytest.approx(1 + 25e-6)
    with pytest.raises(ValueError, match="unknown link 'token-ring'"):
        load_link("token-ring")


def test_a_transfer_alone_takes_latency_plus_bytes_over_bandwidth_times_the_dilation() -> None:
    async def scenario() -> tuple[float, float]:
        link = SharedLink(SLOW, dilation=2.0)
        started = time.perf_counter()
        emulated = await link.carry(40e6)  # 40 ms at 1 GB/s
        return emulated, time.perf_counter() - started

    emulated, wall = asyncio.run(scenario())
    assert emulated == pytest.approx(0.05, rel=0.02)
    assert 0.1 <= wall < 0.2  # 2 x 50 ms, plus the event loop's lateness


def test_transfers_at_once_share_the_bandwidth() -> None:
    async def scenario() -> list[float]:
        link = SharedLink(SLOW, dilation=1.0)
        return list(await asyncio.gather(link.carry(40e6), link.carry(40e6)))

    both = asyncio.run(scenario())
    # Each gets half the bandwidth: 80 ms of transfer, plus the latency, for both.
    assert both == [pytest.approx(0.09, rel=0.05)] * 2


def test_transfers_of_any_size_end() -> None:
    """A transfer's last stretch ends it: no float residue keeps it looping (it once spun a prefill node)."""

    async def scenario() -> list[float]:
        link = SharedLink(load_link("nvlink"), dilation=1.0)
        sizes = [1, 12345.6789, 3.3e6, 7.77e7, 131072 * 4321]
        return list(await asyncio.wait_for(asyncio.gather(*(link.carry(n) for n in sizes)), timeout=2.0))

    took = asyncio.run(scenario())
    assert all(t >= 10e-6 for t in took)  # the latency, at least
