"""Run one server process: start it, print its ready line, serve until SIGINT/SIGTERM, stop it gracefully.

Written once for every server (a node of any role, the router); it knows them only as `Servable`, so it imports
neither `pdsim.node` nor `router`. Tests that start several servers in one process call `start`/`stop` directly.
"""

from __future__ import annotations

from typing import Protocol

from pdsim.rpc.server import ready_line, wait_for_signal


class Servable(Protocol):
    async def start(self) -> str:
        """Serve; returns the bound gRPC address."""
        ...

    async def stop(self, grace: float | None = ...) -> None:
        """Drain in-flight requests for `grace` seconds (None: the server's configured drain), then stop."""
        ...

    @property
    def endpoints(self) -> dict[str, str]:
        """Other endpoints for the ready line by name, e.g. metrics: host:port ("" when off)."""
        ...


async def serve(server: Servable, name: str) -> None:
    """`name` (a role, or "router") heads the ready line, which the launcher reads to learn the addresses."""
    try:
        address = await server.start()
        print(ready_line(name, address, **server.endpoints), flush=True)
        await wait_for_signal()
    finally:
        await server.stop()
