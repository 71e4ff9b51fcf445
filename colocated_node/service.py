"""The colocated worker: one process, one model, prefill and decode interleaved by the scheduler policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc

from pdsim.core.errors import PdsimError
from pdsim.core.topology import Role
from pdsim.node.server import NodeServer
from pdsim.node.service import PREFILL_SPANS, EventStream, request_from_pb, stream_tokens
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.status import abort


class WorkerService(pb_grpc.WorkerServicer):
    def __init__(self, node: ColocatedNodeServer) -> None:
        self._node = node

    async def Generate(
        self,
        request: pb.NodeRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.TokenChunk]:
        received = time.monotonic()
        node = self._node
        events = EventStream()
        try:
            engine_request = request_from_pb(request, node.built.info, node.config.default_max_tokens, events, context)
            with node.in_flight.hold(engine_request.request_id):
                node.built.engine.submit(engine_request)
                async for chunk in stream_tokens(
                    events, node.built.engine, engine_request, received, context, node.tracing, PREFILL_SPANS
                ):
                    yield chunk
        except PdsimError as error:
            await abort(context, error)


class ColocatedNodeServer(NodeServer):
    role = Role.COLOCATED

    def _add_services(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_WorkerServicer_to_server(WorkerService(self), server)
