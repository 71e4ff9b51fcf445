"""The router's view of its nodes: channels, stubs, in-flight counts, and each node's last load report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel

log = logging.getLogger(__name__)


@dataclass(eq=False)
class NodeHandle:
    address: str
    channel: grpc.aio.Channel
    inflight: int = 0  # this router's requests on the node now
    load: pb.LoadReport | None = None  # None until the first report (or after a failed poll)
    node: pb_grpc.NodeStub = field(init=False)
    worker: pb_grpc.WorkerStub = field(init=False)
    prefill: pb_grpc.PrefillStub = field(init=False)
    decode: pb_grpc.DecodeStub = field(init=False)

    def __post_init__(self) -> None:
        self.node = pb_grpc.NodeStub(self.channel)
        self.worker = pb_grpc.WorkerStub(self.channel)
        self.prefill = pb_grpc.PrefillStub(self.channel)
        self.decode = pb_grpc.DecodeStub(self.channel)

    @contextlib.contextmanager
    def busy(self) -> Iterator[NodeHandle]:
        """Count a request against this node while the block runs."""
        self.inflight += 1
        try:
            yield self
        finally:
            self.inflight -= 1


class NodePool:
    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.nodes = {a: NodeHandle(a, insecure_channel(a)) for a in addresses}
        self._poller: asyncio.Task[None] | None = None

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
                return info
            except grpc.aio.AioRpcError as error:
                if loop.time() > deadline:
                    raise ConnectionError(f"node {node.address} did not answer: {error.details()}") from error
                await asyncio.sleep(0.2)

    def start_polling(self, period: float) -> None:
        self._poller = asyncio.create_task(self._poll(period))

    async def _poll(self, period: float) -> None:
        while True:
            await asyncio.gather(*(self._refresh(n, period) for n in self.nodes.values()))
            await asyncio.sleep(period)

    @staticmethod
    async def _refresh(node: NodeHandle, timeout: float) -> None:
        try:
            node.load = await node.node.GetLoad(pb.LoadRequest(), timeout=max(timeout, 0.5))
        except grpc.aio.AioRpcError:
            node.load = None

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for node in self.nodes.values():
            await node.channel.close()
