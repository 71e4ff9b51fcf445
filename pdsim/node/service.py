"""What every node serves beside its role: GetInfo and GetLoad, and the bridge from engine events to asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator

import grpc

from pdsim.core.errors import AlreadyExists
from pdsim.core.requests import SamplingParams, validate_request
from pdsim.engine.engine import Engine
from pdsim.engine.request import EngineEvent, Failure, Request, TokenOutput
from pdsim.engine.schedulers import LoadSnapshot
from pdsim.models.info import ModelInfo
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.convert import finish_to_pb, logprobs_to_pb, sampling_from_pb
from pdsim.rpc.status import abort
from pdsim.tracing import Metadata, Stage, Tracing, trace_metadata


class EventStream:
    """Engine events for one request, delivered on the event loop that created the stream."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[EngineEvent] = asyncio.Queue()

    def emit(self, event: EngineEvent) -> None:  # called on the engine thread
        with contextlib.suppress(RuntimeError):  # the loop is closed: the node is shutting down, nobody listens
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    async def next(self) -> EngineEvent:
        return await self._queue.get()


class InFlight:
    """Request ids a node is serving now. The engine keys requests on their id, so a second request with an id
    already in flight is refused rather than allowed to alias the first (the router's ids are unique; a
    client talking to a node directly might repeat one). Used on the event loop only."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    @contextlib.contextmanager
    def hold(self, request_id: str) -> Iterator[None]:
        if request_id in self._ids:
            raise AlreadyExists(f"request id {request_id!r} is already in flight on this node")
        self._ids.add(request_id)
        try:
            yield
        finally:
            self._ids.discard(request_id)


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def request_seed(params: SamplingParams) -> int:
    """The client's seed, or a random one: sampling is a function of (seed, token index) either way."""
    return params.seed if params.seed is not None else secrets.randbits(63)


def request_from_pb(
    msg: pb.NodeRequest,
    info: ModelInfo,
    default_max_tokens: int,
    events: EventStream,
    context: grpc.aio.ServicerContext,
) -> Request:
    """A validated engine request (raises `InvalidRequest` naming the bad field)."""
    params = sampling_from_pb(msg.sampling, default_max_tokens)
    prompt = list(msg.prompt_token_ids)
    validate_request(prompt, params, info.limits)
    return Request(
        request_id=msg.request_id or secrets.token_hex(8),
        params=params,
        seed=request_seed(params),
        emit=events.emit,
        prompt_ids=prompt,
        deadline=deadline_of(context),
    )


class NodeService(pb_grpc.NodeServicer):
    def __init__(
        self, role: str, info: ModelInfo, default_max_tokens: int, load: Callable[[], LoadSnapshot],
        steps: Callable[[], int], dilation: float = 1.0,
    ) -> None:  # fmt: skip
        self._info = pb.NodeInfo(
            role=role,
            model_name=info.name,
            model_path=str(info.path),
            model_fingerprint=info.fingerprint,
            max_context=info.limits.max_context,
            eos_token_ids=sorted(info.eos_token_ids),
            vocab_size=info.limits.vocab_size,
            default_max_tokens=default_max_tokens,
            time_dilation=dilation,
        )
        self._load = load
        self._steps = steps

    async def GetInfo(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.NodeInfo:
        return self._info

    async def GetLoad(self, request: pb.LoadRequest, context: grpc.aio.ServicerContext) -> pb.LoadReport:
        load = self._load()
        return pb.LoadReport(
            waiting=load.waiting,
            running=load.running,
            kv_bytes_held=load.kv_bytes_held,
            kv_bytes_capacity=load.kv_bytes_capacity,
            kv_staged=load.kv_staged,
            steps=self._steps(),
        )


# Span names, by role: a first token's three stages (see `node_timing`), then every step the request ran.
SpanNames = tuple[str, str, str, str]
PREFILL_SPANS: SpanNames = ("node_receive", "queue", "prefill", "generate")
DECODE_SPANS: SpanNames = ("decode_receive", "decode_queue", "first_decode_step", "decode")


def node_timing(
    request: Request, received: float, tracing: Tracing, trace: Metadata, names: SpanNames, now: float
) -> dict[str, float]:
    """The node's stages for a request's first token, emitted at `now` (time.monotonic()): from the call's
    arrival (`received`) to the engine, the engine's queue, and its steps up to this token; also recorded as
    spans `names` of the request's trace."""
    queued = max(received, request.queued_at)
    started = max(queued, request.started_at or now)
    tracing.stages(
        [Stage(names[0], received, queued), Stage(names[1], queued, started), Stage(names[2], started, now)],
        trace,
        request_id=request.request_id,
    )
    return {"receive": queued - received, "queue": started - queued, "compute": now - started}


async def stream_tokens(
    events: EventStream,
    engine: Engine,
    request: Request,
    received: float,
    context: grpc.aio.ServicerContext,
    tracing: Tracing,
    names: SpanNames,
) -> AsyncIterator[pb.TokenChunk]:
    """Relay a request's tokens, the first with the node's timing (see `node_timing`); if the stream ends early
    (the client went away), the engine forgets it."""
    finished = False
    first = True
    trace = trace_metadata(context.invocation_metadata())
    try:
        while not finished:
            event = await events.next()
            if isinstance(event, Failure):
                finished = True  # the engine already dropped it
                await abort(context, event.error)
            assert isinstance(event, TokenOutput), event
            finished = event.finish_reason is not None
            timing = node_timing(request, received, tracing, trace, names, event.emitted_at) if first else None
            first = False
            chunk = pb.TokenChunk(
                token_ids=[event.token],
                finish_reason=finish_to_pb(event.finish_reason),
                timing=timing,
                emitted_at=[event.emitted_at],
            )
            if event.logprobs is not None:
                chunk.logprobs.append(logprobs_to_pb(event.logprobs))
            yield chunk
    finally:
        if not finished:
            engine.abort(request.request_id)
        if request.started_at:  # the steps it ran on this node, its first token's stages aside
            tracing.stages([Stage(names[3], request.started_at, time.monotonic())], trace)
