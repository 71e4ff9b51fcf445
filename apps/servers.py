"""Which server class plays each role, written once, and the entry point of one server process.

Imported only when a server starts (it loads torch); the command line parses without it.
"""

from __future__ import annotations

import uvloop

from colocated_node.service import ColocatedNodeServer
from decode_node.service import DecodeNodeServer
from pdsim.core.topology import Role
from pdsim.engine.build import pin_cpus
from pdsim.node.config import NodeConfig
from pdsim.node.server import NodeServer
from pdsim.rpc.serve import serve
from prefill_node.service import PrefillNodeServer
from router.config import RouterConfig
from router.server import RouterServer

SERVERS: dict[Role, type[NodeServer]] = {
    Role.PREFILL: PrefillNodeServer,
    Role.DECODE: DecodeNodeServer,
    Role.COLOCATED: ColocatedNodeServer,
}


def run_node(role: Role, config: NodeConfig) -> int:
    pin_cpus(config.cpus)  # before the engine creates torch's threads
    uvloop.run(serve(SERVERS[role](config), role.value))
    return 0


def run_router(config: RouterConfig) -> int:
    uvloop.run(serve(RouterServer(config), "router"))
    return 0
