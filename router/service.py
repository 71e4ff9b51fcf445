"""The client-facing Generate: tokenize, validate, route through the mode, stream tokens and text back."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from pdsim.errors import InvalidRequest, PdsimError
from pdsim.requests import ModelLimits, validate_request
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import finish_to_pb, sampling_from_pb
from pdsim.rpc.status import abort
from router.detokenizer import IncrementalDetokenizer, RouterTokenizer
from router.modes import RoutedRequest, Tokens
from router.nodes import NodePool


class Mode(Protocol):
    def generate(self, request: RoutedRequest) -> AsyncIterator[Tokens]: ...


class RouterService(pb_grpc.RouterServicer):
    def __init__(self, mode: Mode, tokenizer: RouterTokenizer, limits: ModelLimits, default_max_tokens: int) -> None:
        self._mode = mode
        self._tokenizer = tokenizer
        self._limits = limits
        self._default_max_tokens = default_max_tokens

    async def Generate(
        self,
        request: pb.GenerateRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.GenerateResponse]:
        try:
            routed = self._route(request, context)
        except PdsimError as error:
            await abort(context, error)
        detokenizer = IncrementalDetokenizer(self._tokenizer.decode)
        completion_tokens = 0
        first = True
        try:
            async for tokens in self._mode.generate(routed):
                completion_tokens += len(tokens.token_ids)
                text = detokenizer.add(tokens.token_ids)
                response = pb.GenerateResponse(token_ids=tokens.token_ids, text=text)
                if first:
                    response.request_id = request.request_id or routed.request_id
                    first = False
                if tokens.finish_reason is not None:
                    response.text += detokenizer.flush()
                    response.finish_reason = finish_to_pb(tokens.finish_reason)
                    response.usage.CopyFrom(
                        pb.Usage(prompt_tokens=len(routed.prompt_ids), completion_tokens=completion_tokens)
                    )
                yield response
        except PdsimError as error:
            await abort(context, error)

    def _route(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> RoutedRequest:
        which = request.WhichOneof("prompt")
        if which == "text":
            prompt = self._tokenizer.encode(request.text)
        elif which == "token_ids":
            prompt = list(request.token_ids.ids)
        else:
            raise InvalidRequest("prompt is missing: set text or token_ids")
        params = sampling_from_pb(request.sampling, self._default_max_tokens)
        validate_request(prompt, params, self._limits)
        remaining = context.time_remaining()
        return RoutedRequest(
            # Nodes key requests on this id, so it is always the router's own: a client's id may repeat.
            request_id=uuid.uuid4().hex,
            prompt_ids=prompt,
            params=params,
            deadline=None if remaining is None else time.monotonic() + remaining,
        )


class RouterNodeService(pb_grpc.NodeServicer):
    """The router answers GetInfo (the model its nodes serve) and GetLoad (its nodes' last reports, summed)."""

    def __init__(self, info: pb.NodeInfo, pool: NodePool) -> None:
        self._info = pb.NodeInfo()
        self._info.CopyFrom(info)
        self._info.role = "router"
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
