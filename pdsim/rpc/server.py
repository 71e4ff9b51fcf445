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
# A node that hangs (SIGSTOP, a wedged host) keeps its TCP connection open, so its streams would wait forever:
# clients ping every KEEPALIVE_MS, idle or not, and drop the connection (failing its calls with UNAVAILABLE)
# when a ping goes unanswered for KEEPALIVE_TIMEOUT_MS. Pings are answered by gRPC's core, not the event loop,
# so a node busy in Python still answers them.
KEEPALIVE_MS = 1000
KEEPALIVE_TIMEOUT_MS = 2000
# gRPC's default reconnect backoff grows to 120 s: a node restarted on the same port would stay unreachable
# for up to a minute. Capped at a second, a returning node is reachable again within about that.
RECONNECT_BACKOFF_MS = (100, 1000)  # first and longest
CHANNEL_OPTIONS = [
    *GRPC_OPTIONS,
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    # gRPC 1.6x+ waits for a ping's ack this long whatever keepalive_timeout says (default 60 s: measured, a
    # stopped node's stream then ended after 61 s instead of 3).
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # 0: no limit; the default (2) would stop pinging an idle stream
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
    ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
]
# Servers accept those pings: by default they allow one every 5 minutes and close the connection of a client
# that pings more often (GOAWAY "too_many_pings").
SERVER_OPTIONS = [
    *GRPC_OPTIONS,
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MS // 2),
    ("grpc.http2.max_ping_strikes", 0),  # 0: never close a connection for pinging
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
    return grpc.aio.server(options=SERVER_OPTIONS)


def insecure_channel(address: str) -> grpc.aio.Channel:
    """A channel with keepalive and a short reconnect backoff (see `CHANNEL_OPTIONS`)."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


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
