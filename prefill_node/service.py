"""The prefill node: batches prompts, streams each first token back, pushes the KV to a decode node."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc

from pdsim.core.emulation.links import load_link
from pdsim.core.errors import InvalidRequest, PdsimError
from pdsim.core.topology import Role
from pdsim.engine.request import Failure, PrefillOutput, Request
from pdsim.kv.link import SharedLink
from pdsim.kv.send import KvSender
from pdsim.node.server import NodeServer
from pdsim.node.service import PREFILL_SPANS, EventStream, node_timing, request_from_pb
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import finish_to_pb, logprobs_to_pb
from pdsim.rpc.status import abort
from pdsim.tracing import Stage, trace_metadata


class PrefillService(pb_grpc.PrefillServicer):
    def __init__(self, node: PrefillNodeServer) -> None:
        self._node = node

    async def Prefill(
        self,
        request: pb.PrefillRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.PrefillEvent]:
        received = time.monotonic()
        node = self._node
        events = EventStream()
        try:
            if not request.kv_destinations:
                raise InvalidRequest("kv_destinations is empty: name at least one decode node")
            engine_request = request_from_pb(
                request.request, node.built.info, node.config.default_max_tokens, events, context
            )
            with node.in_flight.hold(engine_request.request_id):
                node.built.engine.submit(engine_request)
                try:
                    async for event in self._prefill_and_push(engine_request, received, events, request, context):
                        yield event
                finally:
                    node.built.engine.abort(engine_request.request_id)  # frees the slot: pushed, failed or abandoned
        except PdsimError as error:
            await abort(context, error)

    async def _prefill_and_push(
        self,
        engine_request: Request,
        received: float,
        events: EventStream,
        request: pb.PrefillRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.PrefillEvent]:
        trace = trace_metadata(context.invocation_metadata())
        event = await events.next()
        if isinstance(event, Failure):
            raise event.error
        assert isinstance(event, PrefillOutput), event
        first = pb.FirstToken(
            token_id=event.first_token,
            finish_reason=finish_to_pb(event.finish_reason),
            timing=node_timing(engine_request, received, self._node.tracing, trace, PREFILL_SPANS, event.emitted_at),
            emitted_at=event.emitted_at,
        )
        if event.logprobs is not None:
            first.logprobs.CopyFrom(logprobs_to_pb(event.logprobs))
        yield pb.PrefillEvent(first_token=first)
        if event.finish_reason is not None:
            return
        delivery = await self._node.sender.push(
            engine_request.request_id,
            event.slot,
            event.num_tokens,
            list(request.kv_destinations),
            context.time_remaining(),
        )
        self._node.metrics.kv_transfer("sent", delivery.bytes, delivery.seconds)
        pushed = time.monotonic()
        self._node.tracing.stages([Stage("kv_push", pushed - delivery.seconds, pushed)], trace, kv_bytes=delivery.bytes)
        delivered = pb.KvDelivered(
            destination=delivery.destination,
            bytes=delivery.bytes,
            transfer_seconds=delivery.seconds,
            chunks=delivery.chunks,
        )
        yield pb.PrefillEvent(kv_delivered=delivered)


class PrefillNodeServer(NodeServer):
    role = Role.PREFILL
    _sender: KvSender | None = None

    @property
    def sender(self) -> KvSender:
        if self._sender is None:
            config = self.config
            link = None
            if config.model.emulated_profile is not None:
                link = SharedLink(load_link(config.emulation.link), config.dilation)
            self._sender = KvSender(
                self.built.store, self.built.info.fingerprint, config.kv_chunk_bytes, config.kv_push_timeout, link
            )
        return self._sender

    def _add_services(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PrefillServicer_to_server(PrefillService(self), server)

    async def _on_stopping(self) -> None:
        if self._sender is not None:
            await self._sender.close()
