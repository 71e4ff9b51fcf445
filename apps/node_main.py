"""Entry point of one node process: pin cores, serve until SIGINT/SIGTERM, print the bound address."""

from __future__ import annotations

import uvloop

from pdsim.engine.build import pin_cpus
from pdsim.node.config import NodeConfig
from pdsim.node.server import NodeServer
from pdsim.rpc.server import ready_line, wait_for_signal


def make_node(role: str, config: NodeConfig) -> NodeServer:
    if role == "prefill":
        from prefill_node.service import PrefillNodeServer

        return PrefillNodeServer(config)
    if role == "decode":
        from decode_node.service import DecodeNodeServer

        return DecodeNodeServer(config)
    from colocated_node.service import ColocatedNodeServer

    return ColocatedNodeServer(config)


def run_node(role: str, config: NodeConfig) -> int:
    pin_cpus(config.cpus)
    node = make_node(role, config)

    async def serve() -> None:
        address = await node.start()
        # The launcher reads this line to learn where the node listens.
        print(ready_line(role, address, metrics=node.metrics_endpoint.address), flush=True)
        try:
            await wait_for_signal()
        finally:
            await node.stop()

    uvloop.run(serve())
    return 0
