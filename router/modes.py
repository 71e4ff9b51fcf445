"""The two deployments, as the router drives them: each turns a tokenized request into streamed tokens.

Colocated: one Worker.Generate call. Disaggregated: Prefill on a prefill node (which streams the first
token, then pushes the KV to the first decode node that accepts it), then Decode on that node. A node that
refuses for load or is unreachable before any token is produced is skipped for the next in policy order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from pdsim.errors import PdsimError, ResourceExhausted, Unavailable
from pdsim.requests import FinishReason, SamplingParams
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc.convert import finish_from_pb, sampling_to_pb
from pdsim.rpc.status import error_from_rpc
from router.nodes import NodeHandle
from router.policies import RoutingPolicy

_TRY_NEXT = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}


@dataclass(frozen=True, slots=True)
class Tokens:
    token_ids: Sequence[int]
    finish_reason: FinishReason | None


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    timeout: float | None  # seconds left of the client's deadline

    def to_pb(self) -> pb.NodeRequest:
        return pb.NodeRequest(
            request_id=self.request_id, prompt_token_ids=self.prompt_ids, sampling=sampling_to_pb(self.params)
        )


class ColocatedMode:
    def __init__(self, workers: Sequence[NodeHandle], policy: RoutingPolicy) -> None:
        self._workers = workers
        self._policy = policy

    async def generate(self, request: RoutedRequest) -> AsyncIterator[Tokens]:
        refusals: list[str] = []
        for worker in self._policy.rank(self._workers):
            with worker.busy():
                call = worker.worker.Generate(request.to_pb(), timeout=request.timeout)
                produced = False
                try:
                    async for chunk in call:
                        produced = True
                        yield Tokens(chunk.token_ids, finish_from_pb(chunk.finish_reason))
                    return
                except grpc.aio.AioRpcError as error:
                    if produced or error.code() not in _TRY_NEXT:
                        raise error_from_rpc(error, f"worker {worker.address}") from error
                    refusals.append(f"{worker.address}: {error.details()}")
                finally:
                    call.cancel()
        raise _no_node("worker", refusals)


class DisaggregatedMode:
    def __init__(self, prefill: Sequence[NodeHandle], decode: Sequence[NodeHandle], policy: RoutingPolicy) -> None:
        self._prefill = prefill
        self._decode = {node.address: node for node in decode}
        self._policy = policy

    async def generate(self, request: RoutedRequest) -> AsyncIterator[Tokens]:
        refusals: list[str] = []
        destinations = [node.address for node in self._policy.rank(list(self._decode.values()))]
        prefill_request = pb.PrefillRequest(request=request.to_pb(), kv_destinations=destinations)
        for node in self._policy.rank(self._prefill):
            first: pb.FirstToken | None = None
            delivered: pb.KvDelivered | None = None
            with node.busy():
                call = node.prefill.Prefill(prefill_request, timeout=request.timeout)
                try:
                    async for event in call:
                        if event.HasField("first_token"):
                            first = event.first_token
                            yield Tokens([first.token_id], finish_from_pb(first.finish_reason))
                        else:
                            delivered = event.kv_delivered
                    if first is None:
                        raise PdsimError(f"prefill node {node.address} ended without a first token")
                    if first.finish_reason != pb.FINISH_REASON_UNSPECIFIED:
                        return
                    if delivered is None:
                        raise PdsimError(f"prefill node {node.address} ended without delivering the KV")
                except grpc.aio.AioRpcError as error:
                    if first is not None or error.code() not in _TRY_NEXT:
                        raise error_from_rpc(error, f"prefill node {node.address}") from error
                    refusals.append(f"{node.address}: {error.details()}")
                    continue
                finally:
                    call.cancel()
            async for tokens in self._decode_on(self._decode[delivered.destination], request, first.token_id):
                yield tokens
            return
        raise _no_node("prefill node", refusals)

    @staticmethod
    async def _decode_on(node: NodeHandle, request: RoutedRequest, first_token: int) -> AsyncIterator[Tokens]:
        decode_request = pb.DecodeRequest(
            request_id=request.request_id, first_token=first_token, sampling=sampling_to_pb(request.params)
        )
        with node.busy():
            call = node.decode.Decode(decode_request, timeout=request.timeout)
            try:
                async for chunk in call:
                    yield Tokens(chunk.token_ids, finish_from_pb(chunk.finish_reason))
            except grpc.aio.AioRpcError as error:
                raise error_from_rpc(error, f"decode node {node.address}") from error
            finally:
                call.cancel()


def _no_node(kind: str, refusals: list[str]) -> PdsimError:
    message = f"no {kind} could take the request: " + "; ".join(refusals)
    return ResourceExhausted(message) if refusals else Unavailable(message)
