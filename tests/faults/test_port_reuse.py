"""A node's port taken by another server while it is down: the router asks who answers before putting the
address back in rotation, and keeps a stranger (another role, another model) out."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from apps.servers import SERVERS
from pdsim.core.topology import Mode, Role
from tests.cluster import cluster, node_config


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("same_role", [False, True])
def test_a_stranger_on_a_dead_nodes_port_stays_out_of_rotation(same_role: bool) -> None:
    asyncio.run(_scenario(same_role))


async def _scenario(same_role: bool) -> None:
    async with cluster(Mode.COLOCATED, workers=2, load_poll_seconds=0.1) as c:
        victim = c.workers[0]
        port = victim.address.rsplit(":", 1)[1]
        handle = c.router.pool[victim.address]
        await victim.stop(0)
        assert await _until(lambda: not handle.healthy, timeout=5)
        role = Role.COLOCATED if same_role else Role.DECODE
        config = dataclasses.replace(node_config(), port=int(port))
        newcomer = SERVERS[role](config)
        await newcomer.start()
        try:
            if same_role:  # the same role serving the same model: the node restarted, back in rotation
                assert await _until(lambda: handle.healthy, timeout=5)
            else:
                await asyncio.sleep(1.5)  # several probes answer SERVING, from the wrong server
                assert not handle.healthy
        finally:
            await newcomer.stop(0)
