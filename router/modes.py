"""The two deployments, as the router drives them: each turns a tokenized request into streamed tokens.

Colocated: one Worker.Generate call. Disaggregated: Prefill on a prefill node (which streams the first
token, then pushes the KV to the first decode node that accepts it), then Decode on that node. Only nodes in
rotation (see `router.nodes`) are ranked. A node that refuses for load, is unreachable, or fails before any
token is produced is skipped for the next in policy order (the prefill is computed again there); a failure
after the first token ends the request with that error. Every call carries what is left of the request's
deadline, so a node that hangs fails its calls rather than holding them forever.
A disaggregated request that ends without its last token (its client went away, a node failed) has every
decode node release its KV at once, rather than holding it for a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from pdsim.core.errors import PdsimError, ResourceExhausted, Unavailable
from pdsim.core.requests import FinishReason, SamplingParams, TokenLogprobs
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc.convert import finish_from_pb, logprobs_from_pb, sampling_to_pb
from pdsim.rpc.status import error_from_rpc
from pdsim.tracing import Metadata
from router.nodes import NodeHandle, in_rotation
from router.policies import RoutingPolicy
from router.timeline import RequestTimeline

log = logging.getLogger(__name__)

_RELEASE_TIMEOUT = 2.0  # seconds for one node to answer a Release; one that does not frees the KV at lease end
# Before the first token these say "this node cannot serve it now", not "this request is bad": try the next.
# CANCELLED is a node shutting down under the call (this router's own cancellations raise CancelledError).
_TRY_NEXT = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


@dataclass(frozen=True, slots=True)
class Tokens:
    token_ids: Sequence[int]
    finish_reason: FinishReason | None
    logprobs: Sequence[TokenLogprobs] = ()  # one per token, when the request asked for logprobs
    emitted_at: Sequence[float] = ()  # one per token: when its node emitted it (the host's monotonic clock)


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    request_id: str  # unique among this router's requests: what the nodes key on
    prompt_ids: list[int]
    params: SamplingParams
    deadline: float | None  # time.monotonic() of the client's deadline
    timeline: RequestTimeline  # filled in as the request passes each hop
    trace: Metadata = ()  # the request's trace context, sent with every node call

    def timeout(self) -> float | None:
        """What is left of the client's deadline, for the next downstream call."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def bounded(self, default_timeout: float) -> RoutedRequest:
        """This request with a deadline: its own, or `default_timeout` from now when the client set none."""
        if self.deadline is not None:
            return self
        return dataclasses.replace(self, deadline=time.monotonic() + default_timeout)

    def to_pb(self) -> pb.NodeRequest:
        return pb.NodeRequest(
            request_id=self.request_id, prompt_token_ids=self.prompt_ids, sampling=sampling_to_pb(self.params)
        )


class _Refusals:
    """Nodes that declined before producing anything; RESOURCE_EXHAUSTED only if one of them was full."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: list[tuple[str, grpc.StatusCode, str]] = []

    def add(self, node: NodeHandle, error: grpc.aio.AioRpcError) -> None:
        self.seen.append((node.address, error.code(), error.details() or ""))

    def error(self) -> PdsimError:
        reasons = "; ".join(f"{address}: {code.name} {details}" for address, code, details in self.seen)
        message = f"no {self.kind} could take the request: {reasons}"
        full = any(code == grpc.StatusCode.RESOURCE_EXHAUSTED for _, code, _ in self.seen)
        return ResourceExhausted(message) if full else Unavailable(message)


class ColocatedMode:
    def __init__(self, workers: Sequence[NodeHandle], policy: RoutingPolicy, timeout: float) -> None:
        """`timeout`: the deadline, in seconds, of a request whose client set none."""
        self._workers = workers
        self._policy = policy
        self._timeout = timeout

    async def generate(self, request: RoutedRequest) -> AsyncGenerator[Tokens, None]:
        request = request.bounded(self._timeout)
        refusals = _Refusals("worker")
        for worker in self._policy.rank(in_rotation(self._workers)):
            with worker.busy():
                request.timeline.calling(worker.name)
                call = worker.worker.Generate(request.to_pb(), timeout=request.timeout(), metadata=request.trace)
                produced = False
                try:
                    async for chunk in call:
                        if not produced:
                            request.timeline.first_token(
                                chunk.timing, chunk.emitted_at[0] if chunk.emitted_at else None
                            )
                        produced = True
                        yield _tokens(chunk)
                    return
                except grpc.aio.AioRpcError as error:
                    if produced or error.code() not in _TRY_NEXT:
                        raise error_from_rpc(error, f"worker {worker.address}") from error
                    refusals.add(worker, error)
                finally:
                    call.cancel()
        raise refusals.error()


class DisaggregatedMode:
    def __init__(
        self,
        prefill: Sequence[NodeHandle],
        decode: Sequence[NodeHandle],
        prefill_policy: RoutingPolicy,
        decode_policy: RoutingPolicy,
        timeout: float,
    ) -> None:
        self._timeout = timeout
        self._prefill = prefill
        self._decode = list(decode)
        self._by_address = {node.address: node for node in decode}
        self._prefill_policy = prefill_policy
        self._decode_policy = decode_policy
        self._releases: set[asyncio.Task[None]] = set()  # in flight; held so they are not collected mid-call

    async def generate(self, request: RoutedRequest) -> AsyncGenerator[Tokens, None]:
        """`_generate`, and if it ends after its first token but before its last, a release of its KV."""
        produced = finished = False
        try:
            async with contextlib.aclosing(self._generate(request)) as tokens:
                async for piece in tokens:
                    produced, finished = True, piece.finish_reason is not None
                    yield piece
        finally:
            if produced and not finished:
                self._release(request.request_id)

    def _release(self, request_id: str) -> None:
        """Every decode node frees the request's KV, in the background: the KV may be staged on any of them (or
        on its way to one: the prefill node tries them in order), and a cancelled request must not wait for it.
        Unclaimed KV is freed; a Decode's KV is freed by that Decode's own cancellation."""

        async def release(node: NodeHandle) -> None:
            try:
                await node.decode.Release(pb.ReleaseRequest(request_id=request_id), timeout=_RELEASE_TIMEOUT)
            except grpc.aio.AioRpcError as error:  # its lease frees the KV instead
                log.debug("release of %s on %s failed: %s", request_id, node.address, error.code().name)

        for node in self._decode:
            task = asyncio.create_task(release(node))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _generate(self, request: RoutedRequest) -> AsyncGenerator[Tokens, None]:
        request = request.bounded(self._timeout)
        ranked = self._decode_policy.rank(in_rotation(self._decode))
        prefill_request = pb.PrefillRequest(request=request.to_pb(), kv_destinations=[n.address for n in ranked])
        refusals = _Refusals("prefill node")
        first: pb.FirstToken | None = None
        delivered: pb.KvDelivered | None = None
        # Count the request against the decode node it will most likely land on while it is still in prefill:
        # load reports lag, and a burst routed before any request reaches its decode node would otherwise
        # pile onto one node.
        with ranked[0].busy():
            for node in self._prefill_policy.rank(in_rotation(self._prefill)):
                with node.busy():
                    request.timeline.calling(node.name)
                    call = node.prefill.Prefill(prefill_request, timeout=request.timeout(), metadata=request.trace)
                    try:
                        async for event in call:
                            if event.HasField("first_token"):
                                first = event.first_token
                                request.timeline.first_token(first.timing, first.emitted_at or None)
                                logprobs = [logprobs_from_pb(first.logprobs)] if first.HasField("logprobs") else []
                                yield Tokens(
                                    [first.token_id], finish_from_pb(first.finish_reason), logprobs, [first.emitted_at]
                                )
                            else:
                                delivered = event.kv_delivered
                                request.timeline.kv_delivered(
                                    delivered.bytes, delivered.chunks, delivered.transfer_seconds
                                )
                        break
                    except grpc.aio.AioRpcError as error:
                        if first is not None or error.code() not in _TRY_NEXT:
                            raise error_from_rpc(error, f"prefill node {node.address}") from error
                        refusals.add(node, error)
                    finally:
                        call.cancel()
            else:
                raise refusals.error()
        if first is None:
            raise PdsimError("the prefill node ended without a first token")
        if first.finish_reason != pb.FINISH_REASON_UNSPECIFIED:
            return
        if delivered is None or delivered.destination not in self._by_address:
            raise PdsimError(f"the prefill node did not deliver the KV to a known decode node ({delivered})")
        async for tokens in self._decode_on(self._by_address[delivered.destination], request, first.token_id):
            yield tokens

    @staticmethod
    async def _decode_on(node: NodeHandle, request: RoutedRequest, first_token: int) -> AsyncIterator[Tokens]:
        decode_request = pb.DecodeRequest(
            request_id=request.request_id, first_token=first_token, sampling=sampling_to_pb(request.params)
        )
        with node.busy():
            request.timeline.decoding(node.name)
            call = node.decode.Decode(decode_request, timeout=request.timeout(), metadata=request.trace)
            first = True
            try:
                async for chunk in call:
                    if first and chunk.token_ids:
                        request.timeline.second_token(chunk.timing)
                        first = False
                    yield _tokens(chunk)
            except grpc.aio.AioRpcError as error:
                raise error_from_rpc(error, f"decode node {node.address}") from error
            finally:
                call.cancel()


def _tokens(chunk: pb.TokenChunk) -> Tokens:
    logprobs = [logprobs_from_pb(m) for m in chunk.logprobs]
    return Tokens(chunk.token_ids, finish_from_pb(chunk.finish_reason), logprobs, chunk.emitted_at)
