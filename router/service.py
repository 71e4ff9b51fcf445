"""The router's gRPC services: Router.Generate (a translation around `Frontend`) and Node.GetInfo/GetLoad."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

import grpc
from google.protobuf.message import DecodeError

from pdsim.core.errors import InvalidRequest, PdsimError
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import finish_to_pb, logprobs_to_pb, sampling_from_pb, timeline_to_pb
from pdsim.rpc.status import abort
from router.frontend import Admitted, Frontend
from router.nodes import NodePool

log = logging.getLogger(__name__)
ROUTER_SERVICE = pb.DESCRIPTOR.services_by_name["Router"].full_name


class Undecodable:
    """A Generate request that protobuf could not parse, e.g. a text field that is not UTF-8."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _generate_request(data: bytes) -> pb.GenerateRequest | Undecodable:
    try:
        return pb.GenerateRequest.FromString(data)
    except DecodeError as error:
        return Undecodable(str(error))


def add_router_service(service: RouterService, server: grpc.aio.Server) -> None:
    """As the generated `add_RouterServicer_to_server`, except that a request protobuf cannot parse reaches
    `Generate`, which refuses it as INVALID_ARGUMENT saying why; grpc would answer UNKNOWN with its own text."""
    handlers = {
        "Generate": grpc.unary_stream_rpc_method_handler(
            service.Generate,
            request_deserializer=_generate_request,
            response_serializer=pb.GenerateResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ROUTER_SERVICE, handlers),))
    server.add_registered_method_handlers(ROUTER_SERVICE, handlers)


class RouterService(pb_grpc.RouterServicer):
    """The gRPC front: translates Generate to and from the `Frontend`."""

    def __init__(self, frontend: Frontend) -> None:
        self._frontend = frontend

    async def Generate(
        self,
        request: pb.GenerateRequest | Undecodable,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.GenerateResponse]:
        received = time.perf_counter()
        if isinstance(request, Undecodable):
            self._frontend.rejected()
            hint = " (text must be valid UTF-8)" if "UTF-8" in request.reason else ""
            await abort(context, InvalidRequest(f"the request does not parse: {request.reason}{hint}"))
            return
        try:
            admitted = await self._admit(request, context, received)
        except PdsimError as error:
            await abort(context, error)
        first = True
        try:
            async with contextlib.aclosing(self._frontend.stream(admitted)) as pieces:
                async for piece in pieces:
                    response = pb.GenerateResponse(token_ids=piece.token_ids, text=piece.text)
                    response.logprobs.extend(logprobs_to_pb(lp) for lp in piece.logprobs)
                    response.token_times.extend(piece.emitted_at)
                    if first:
                        response.request_id = request.request_id or admitted.routed.request_id
                        first = False
                    if piece.timeline is not None:
                        response.timeline.CopyFrom(timeline_to_pb(piece.timeline))
                    if piece.finish_reason is not None:
                        response.finish_reason = finish_to_pb(piece.finish_reason)
                        response.usage.CopyFrom(
                            pb.Usage(
                                prompt_tokens=len(admitted.routed.prompt_ids), completion_tokens=piece.completion_tokens
                            )
                        )
                    yield response
        except PdsimError as error:
            await abort(context, error)
        except Exception:  # a bug: grpc would send its text (and whatever it names) as the status details
            log.exception("Generate %s failed", admitted.routed.request_id)
            await abort(context, PdsimError("internal error in the router"))

    async def _admit(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext, received: float) -> Admitted:
        which = request.WhichOneof("prompt")
        prompt: str | Sequence[int] | None = None
        if which == "text":
            prompt = request.text
        elif which == "token_ids":
            prompt = request.token_ids.ids  # copied off the event loop, once its length is known to fit
        params = sampling_from_pb(request.sampling, self._frontend.default_max_tokens)
        return await self._frontend.admit(prompt, params, received, request.request_class, context.time_remaining())


class RouterNodeService(pb_grpc.NodeServicer):
    """The router answers GetInfo (the model its nodes serve, by its served name: the checkpoint's path stays on
    the servers) and GetLoad (its nodes' last reports, summed)."""

    def __init__(self, info: pb.NodeInfo, pool: NodePool, served_name: str) -> None:
        self._info = pb.NodeInfo()
        self._info.CopyFrom(info)
        self._info.role = "router"
        self._info.model_name = served_name
        self._info.ClearField("model_path")
        self._pool = pool

    async def GetInfo(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.NodeInfo:
        return self._info

    async def GetLoad(self, request: pb.LoadRequest, context: grpc.aio.ServicerContext) -> pb.LoadReport:
        total = pb.LoadReport()
        for node in self._pool.nodes.values():
            if node.load is not None:
                total.waiting += node.load.waiting
                total.running += node.load.running
                total.kv_bytes_held += node.load.kv_bytes_held
                total.kv_bytes_capacity += node.load.kv_bytes_capacity
                total.kv_staged += node.load.kv_staged
                total.steps += node.load.steps
        return total
