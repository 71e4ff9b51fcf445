"""The router's view of its nodes: channels, stubs, in-flight counts, health, and each node's last load report.

Membership is health: every node is probed on its own schedule (grpc.health.v1 Check, then Node.GetLoad), and
one that does not answer SERVING within the probe timeout is out of rotation until a probe succeeds again. The
channels reconnect with a short backoff and ping with keepalives (`pdsim.rpc.server.CHANNEL_OPTIONS`), so a
node restarted on its port is back within about a second, and a hung one's streams fail instead of waiting.

A node coming back is asked who it is first: while it was down, another server may have taken its port (another
cluster on the machine, a node of another role), and one that is not the same role serving the same model stays
out of rotation, since everything sent to it would fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class NodeHandle:
    address: str
    channel: grpc.aio.Channel
    name: str = ""  # what clients may see of it (a request's timeline): role and index, never the address
    inflight: int = 0  # this router's requests on the node now
    load: pb.LoadReport | None = None  # None until the first report (or after a failed poll)
    healthy: bool = True  # the last probe's answer; a node starts in rotation (the router checked it at start-up)
    identity: tuple[str, str] | None = None  # (role, model fingerprint) it answered at start-up
    node: pb_grpc.NodeStub = field(init=False)
    worker: pb_grpc.WorkerStub = field(init=False)
    prefill: pb_grpc.PrefillStub = field(init=False)
    decode: pb_grpc.DecodeStub = field(init=False)
    health: health_pb2_grpc.HealthStub = field(init=False)

    def __post_init__(self) -> None:
        self.node = pb_grpc.NodeStub(self.channel)
        self.worker = pb_grpc.WorkerStub(self.channel)
        self.prefill = pb_grpc.PrefillStub(self.channel)
        self.decode = pb_grpc.DecodeStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    @contextlib.contextmanager
    def busy(self) -> Iterator[NodeHandle]:
        """Count a request against this node while the block runs."""
        self.inflight += 1
        try:
            yield self
        finally:
            self.inflight -= 1

    def mark(self, healthy: bool, why: str = "") -> None:
        """Put the node in or out of rotation (logged when it changes)."""
        if healthy != self.healthy:
            if healthy:
                log.warning("node %s is back in rotation", self.address)
            else:
                log.warning("node %s is out of rotation: %s", self.address, why)
        self.healthy = healthy


def in_rotation(nodes: Sequence[NodeHandle]) -> Sequence[NodeHandle]:
    """The healthy nodes; all of them when none is, so a cluster whose probes lag is tried rather than refused
    (a node that is really gone fails fast: its channel is down)."""
    healthy = [node for node in nodes if node.healthy]
    return healthy or nodes


class NodePool:
    def __init__(self, addresses: tuple[str, ...], names: tuple[str, ...] = ()) -> None:
        """`names`: one per address (default: node-0, node-1, ...)."""
        names = names or tuple(f"node-{i}" for i in range(len(addresses)))
        self.nodes = {a: NodeHandle(a, insecure_channel(a), name) for a, name in zip(addresses, names, strict=True)}
        self._probes: list[asyncio.Task[None]] = []

    def __getitem__(self, address: str) -> NodeHandle:
        return self.nodes[address]

    async def fetch_info(self, timeout: float) -> dict[str, pb.NodeInfo]:
        """Every node's info, waiting up to `timeout` for nodes that are still starting."""
        return dict(
            zip(
                self.nodes,
                await asyncio.gather(*(self._info(n, timeout) for n in self.nodes.values())),
                strict=True,
            )
        )

    @staticmethod
    async def _info(node: NodeHandle, timeout: float) -> pb.NodeInfo:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                info: pb.NodeInfo = await node.node.GetInfo(pb.InfoRequest(), timeout=2.0, wait_for_ready=True)
                node.identity = (info.role, info.model_fingerprint)
                return info
            except grpc.aio.AioRpcError as error:
                if loop.time() > deadline:
                    raise ConnectionError(f"node {node.address} did not answer: {error.details()}") from error
                await asyncio.sleep(0.2)

    def start_polling(self, period: float, probe_timeout: float = 1.0) -> None:
        """Probe every node each `period` seconds, each on its own task: a hung node delays only its own probes."""
        self._probes = [asyncio.create_task(self._probe(n, period, probe_timeout)) for n in self.nodes.values()]

    @staticmethod
    async def _probe(node: NodeHandle, period: float, timeout: float) -> None:
        while True:
            try:
                # wait_for_ready=False: a node whose connection is down fails the probe at once.
                reply = await node.health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                serving = reply.status == health_pb2.HealthCheckResponse.SERVING
                why = f"health {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
                if serving and not node.healthy and node.identity is not None:
                    info = await node.node.GetInfo(pb.InfoRequest(), timeout=timeout)
                    if (info.role, info.model_fingerprint) != node.identity:
                        serving = False
                        why = f"it now answers as a {info.role} node of model {info.model_name}, not the one it was"
                node.mark(serving, why)
                node.load = await node.node.GetLoad(pb.LoadRequest(), timeout=timeout) if serving else None
            except grpc.aio.AioRpcError as error:
                node.mark(False, f"probe failed: {error.code().name}")
                node.load = None
            await asyncio.sleep(period)

    async def close(self) -> None:
        for task in self._probes:
            task.cancel()
        for task in self._probes:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for node in self.nodes.values():
            await node.channel.close()
