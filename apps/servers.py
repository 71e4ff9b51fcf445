"""Which server class plays each role, written once, and the entry point of one server process.

Imported only when a server starts (a real node loads torch); the command line parses without it.
"""

from __future__ import annotations

import logging
import os
import sys

import uvloop

from colocated_node.service import ColocatedNodeServer
from decode_node.service import DecodeNodeServer
from pdsim.core.topology import Role
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
    if config.model.emulated_profile is None:  # an emulated node computes nothing and loads no torch
        from pdsim.engine.build import pin_cpus

        pin_cpus(config.cpus)  # before the engine creates torch's threads
    uvloop.run(serve(SERVERS[role](config), role.value))
    return _exit_now()


def run_router(config: RouterConfig) -> int:
    uvloop.run(serve(RouterServer(config), "router"))
    return _exit_now()


def _exit_now() -> int:
    """Exit as soon as the server has stopped. Everything it owns is closed by then (streams drained, engine and
    metrics stopped, channels closed); what is left is the interpreter's teardown of torch and gRPC, which takes
    0.4-1 s idle and longer on a loaded machine, and would stretch a bounded drain."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
