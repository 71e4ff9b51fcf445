"""The decode node's gRPC glue: PushKv hands its frames to `pdsim.kv.receive`, Decode continues generation from
the staged KV. Receiving, checking and staging KV live in `pdsim.kv`; this module only maps them to RPCs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from pdsim.core.errors import InvalidRequest, PdsimError
from pdsim.core.requests import validate_lengths
from pdsim.core.topology import Role
from pdsim.engine.request import Request, finish_reason
from pdsim.engine.schedulers import LoadSnapshot
from pdsim.kv.frames import DECODE_SERVICE, KvFrame, decode_kv_frame
from pdsim.kv.receive import KvReceiver
from pdsim.kv.staging import KvStaging
from pdsim.node.server import NodeServer
from pdsim.node.service import DECODE_SPANS, EventStream, deadline_of, request_seed, stream_tokens
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import finish_to_pb, sampling_from_pb
from pdsim.rpc.status import abort

# grpc-python races when a servicer aborts a client stream that is still sending: about one refusal in a
# hundred reaches the client as INTERNAL ("Internal error from Core") instead of its own status. Reading the
# rest of the stream first (the frames are dropped as they come) lets the status through intact; a client that
# stalls is aborted anyway after this long.
REFUSAL_DRAIN_SECONDS = 5.0


async def _drain(frames: AsyncIterator[object], seconds: float) -> None:
    with contextlib.suppress(Exception):  # a client that went away or stalled: nothing is left to protect
        async with asyncio.timeout(seconds):
            async for _ in frames:
                pass


class DecodeService(pb_grpc.DecodeServicer):
    def __init__(self, node: DecodeNodeServer) -> None:
        self._node = node

    async def PushKv(
        self, request_iterator: AsyncIterator[KvFrame | InvalidRequest], context: grpc.aio.ServicerContext
    ) -> pb.PushKvReply:
        """Frames arrive decoded by `decode_kv_frame` (see `_add_services`), chunk data as views."""
        try:
            receipt = await self._node.receiver.receive(request_iterator)
        except PdsimError as error:
            await _drain(request_iterator, REFUSAL_DRAIN_SECONDS)
            await abort(context, error)
            raise AssertionError("unreachable") from error  # abort() raises
        self._node.metrics.kv_transfer("received", receipt.bytes, receipt.seconds)
        return pb.PushKvReply(bytes_received=receipt.bytes, lease_seconds=self._node.staging.lease_seconds)

    async def Release(self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext) -> pb.ReleaseReply:
        """The router's client went away: free the request's staged KV now (see `KvStaging.release_id`)."""
        return pb.ReleaseReply(released=self._node.staging.release_id(request.request_id))

    async def Decode(
        self,
        request: pb.DecodeRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.TokenChunk]:
        try:
            with self._node.in_flight.hold(request.request_id):
                async for chunk in self._decode(request, context):
                    yield chunk
        except PdsimError as error:
            await abort(context, error)

    async def _decode(
        self, request: pb.DecodeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TokenChunk]:
        received = time.monotonic()
        node = self._node
        info, engine = node.built.info, node.built.engine
        params = sampling_from_pb(request.sampling, node.config.default_max_tokens)
        if not 0 <= request.first_token < info.limits.vocab_size:
            raise InvalidRequest(f"first_token {request.first_token} is outside the vocabulary")
        entry = node.staging.claim(request.request_id)
        events = EventStream()
        submitted = False
        try:
            validate_lengths(entry.num_tokens, params, info.limits)
            engine_request = Request(
                request_id=request.request_id,
                params=params,
                seed=request_seed(params),
                emit=events.emit,
                prompt_len=entry.num_tokens,
                output_ids=[request.first_token],
                deadline=deadline_of(context),
                staged=entry,
            )
            reason = finish_reason(engine_request, info.eos_token_ids, info.limits.max_context)
            if reason is not None:  # generation already ended at the first token: nothing to decode
                yield pb.TokenChunk(finish_reason=finish_to_pb(reason))
                return
            engine.submit(engine_request)  # from here the engine releases the staged KV
            submitted = True
        finally:
            if not submitted:
                entry.release()
        async for chunk in stream_tokens(events, engine, engine_request, received, context, node.tracing, DECODE_SPANS):
            yield chunk


class DecodeNodeServer(NodeServer):
    role = Role.DECODE
    _receiver: KvReceiver | None = None
    _lease_task: asyncio.Task[None] | None = None

    @property
    def receiver(self) -> KvReceiver:
        assert self._receiver is not None, "start() first"
        return self._receiver

    @property
    def staging(self) -> KvStaging:
        return self.receiver.staging

    def _add_services(self, server: grpc.aio.Server) -> None:
        # Allocated here, before anything serves: the metrics scrape thread reads the staging arena too.
        self._receiver = KvReceiver.for_model(self.built.info, self.config.engine)
        # Registered by hand rather than with the generated helper: PushKv frames skip protobuf parsing.
        service = DecodeService(self)
        handlers = {
            "PushKv": grpc.stream_unary_rpc_method_handler(
                service.PushKv,
                request_deserializer=decode_kv_frame,
                response_serializer=pb.PushKvReply.SerializeToString,
            ),
            "Decode": grpc.unary_stream_rpc_method_handler(
                service.Decode,
                request_deserializer=pb.DecodeRequest.FromString,
                response_serializer=pb.TokenChunk.SerializeToString,
            ),
            "Release": grpc.unary_unary_rpc_method_handler(
                service.Release,
                request_deserializer=pb.ReleaseRequest.FromString,
                response_serializer=pb.ReleaseReply.SerializeToString,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(DECODE_SERVICE, handlers),))

    def load(self) -> LoadSnapshot:
        engine_load = self.built.engine.load()
        staging = self.staging
        per_token = self.built.info.layout.bytes_per_token
        return LoadSnapshot(
            waiting=engine_load.waiting,
            running=engine_load.running,
            # In tokens x the model's bytes per token: an emulated node stages a stand-in of the cache.
            kv_bytes_held=engine_load.kv_bytes_held + staging.held_tokens * per_token,
            kv_bytes_capacity=engine_load.kv_bytes_capacity + staging.capacity_tokens * per_token,
            kv_staged=len(staging),
        )

    async def _on_started(self) -> None:
        self._lease_task = asyncio.create_task(self.receiver.expire_leases())

    async def _on_stopping(self) -> None:
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
