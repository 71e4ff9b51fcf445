"""Server and channel plumbing shared by every node: options, health, binding, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)

# KV chunks are up to 4 MiB of payload plus framing: leave room above gRPC's 4 MiB default on both sides.
# Every process prints a ready line (see `ready_line`) on stdout once it serves; the launcher reads it.
READY_PREFIX = "pdsim-ready"
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


def ready_line(role: str, address: str, **endpoints: str) -> str:
    """`pdsim-ready <role> <grpc address> [name=<host:port or empty> ...]`, e.g. `metrics=127.0.0.1:9400`."""
    return " ".join([READY_PREFIX, role, address, *(f"{name}={value}" for name, value in endpoints.items())])


def parse_ready_line(line: str) -> tuple[str, dict[str, str]] | None:
    """(gRPC address, other endpoints by name) from a ready line; None for any other line."""
    parts = line.split()
    if len(parts) < 3 or parts[0] != READY_PREFIX or not all("=" in p for p in parts[3:]):
        return None
    return parts[2], dict(p.split("=", 1) for p in parts[3:])


def new_server() -> grpc.aio.Server:
    return grpc.aio.server(options=GRPC_OPTIONS)


def insecure_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)


def add_health(server: grpc.aio.Server) -> health.aio.HealthServicer:
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


def bind(server: grpc.aio.Server, host: str, port: int) -> str:
    """Bind and return the actual address (port 0 picks a free port)."""
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind {host}:{port}")
    return f"{host}:{bound}"


def open_server(host: str, port: int) -> tuple[grpc.aio.Server, health.aio.HealthServicer, str]:
    """A new server with the health service (NOT_SERVING until `set_serving`), bound; and its actual address."""
    server = new_server()
    servicer = add_health(server)
    return server, servicer, bind(server, host, port)


async def set_serving(servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await servicer.set("", status)


async def wait_healthy(address: str, timeout: float) -> None:
    """Poll a node's health service until it reports SERVING."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} did not report healthy within {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def wait_for_signal() -> None:
    """Return on the first SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
