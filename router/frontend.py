"""What every client-facing API of the router shares: admit a request, route it through the mode, stream its
tokens and text back, and record what the client saw in the router's metrics.

The gRPC Router service and the HTTP front are thin translations around `Frontend`; neither times requests
nor counts outcomes itself, so both report the same metrics. No gRPC or HTTP types here.

The event loop is shared by every client's stream, so nothing here costs it more than a pass over a request's
bytes: a text prompt is bounded in bytes before it is tokenized, and tokenizing (like a front's chat templating)
runs on the tokenizer threads (`off_loop`). Errors from the nodes reach a client scrubbed of the cluster's
addresses and paths (`router.client_errors`); the router logs the original.

`drain` is the router's graceful stop for both fronts: new requests are refused, in-flight streams get a
bounded time to finish, and the rest end with an UNAVAILABLE error (an error event and [DONE] over HTTP), never
cut without a terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ParamSpec, Protocol, TypeVar

from pdsim.core.errors import InvalidRequest, PdsimError, Unavailable
from pdsim.core.requests import (
    FinishReason,
    ModelLimits,
    SamplingParams,
    TokenLogprobs,
    max_prompt_bytes,
    validate_lengths,
    validate_prompt_text,
    validate_request,
)
from pdsim.core.timeline import Timeline
from pdsim.metrics import RouterMetrics
from pdsim.tracing import RootSpan, Tracing
from router.client_errors import ErrorScrubber
from router.detokenizer import IncrementalDetokenizer, RouterTokenizer
from router.modes import RoutedRequest, Tokens
from router.stop_strings import StopStrings
from router.timeline import RequestTimeline

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_CUT_SECONDS = 1.0  # for the streams the drain ended to send their error: bounded, so stopping is bounded too


class Mode(Protocol):
    def generate(self, request: RoutedRequest) -> AsyncGenerator[Tokens, None]: ...


@dataclass(frozen=True, slots=True)
class Admitted:
    """A validated request and when the router received it."""

    routed: RoutedRequest
    request_class: str
    received: float  # time.perf_counter()
    stop: tuple[str, ...] = ()  # stop strings: the text ends before the first one it contains
    include_stop: bool = False  # keep the stop string, or a stop token's text, at the end of the text
    root: RootSpan | None = None  # its trace's root span, when tracing is on


@dataclass(frozen=True, slots=True)
class Piece:
    """New tokens and the complete text they add; the last piece has a finish reason."""

    token_ids: Sequence[int]
    text: str
    finish_reason: FinishReason | None
    completion_tokens: int  # so far, this piece included
    timeline: Timeline | None = None  # on the last piece
    logprobs: Sequence[TokenLogprobs] = ()  # one per token id, when the request asked for logprobs
    emitted_at: Sequence[float] = ()  # one per token id: when its node emitted it (see `router.modes.Tokens`)


class Frontend:
    def __init__(
        self,
        mode: Mode,
        tokenizer: RouterTokenizer,
        limits: ModelLimits,
        default_max_tokens: int,
        metrics: RouterMetrics,
        tokenizer_threads: Executor,
        scrubber: ErrorScrubber,
        tracing: Tracing,
        dilation: float = 1.0,
    ) -> None:
        """`tokenizer_threads` run tokenizing and templating (its owner shuts it down); `scrubber` makes the
        nodes' errors fit for clients. `dilation` > 1: emulated nodes, whose tokens count from when they were
        emitted and whose latencies are reported in emulated seconds (see `router.timeline`)."""
        self.dilation = dilation
        self.tokenizer = tokenizer
        self.limits = limits
        self.default_max_tokens = default_max_tokens
        # A text prompt longer than this cannot fit the context, whatever it tokenizes to.
        self.max_prompt_bytes = max_prompt_bytes(limits, tokenizer.max_token_bytes)
        self._mode = mode
        self._metrics = metrics
        self._threads = tokenizer_threads
        self._scrubber = scrubber
        self._tracing = tracing
        self._streams: set[asyncio.Task[Any]] = set()  # the tasks streaming a request now
        self._waiting: set[asyncio.Task[Any]] = set()  # of those, the ones awaiting the nodes (not the client)
        self._cut: set[asyncio.Task[Any]] = set()  # of those, the ones `drain` ended
        self._draining = False

    async def off_loop(self, work: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """`work(*args, **kwargs)` on a tokenizer thread, so that a long prompt stalls no other client's stream."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(work, *args, **kwargs))

    async def admit(
        self,
        prompt: str | Sequence[int] | None,
        params: SamplingParams,
        received: float,
        request_class: str = "",
        timeout: float | None = None,
        stop: Sequence[str] = (),
        include_stop: bool = False,
        special_tokens: bool = True,
    ) -> Admitted:
        """Tokenize and validate; raises `InvalidRequest` naming the bad value (and counts it). `received` is
        the front's `time.perf_counter()` on receipt; `stop` strings are non-empty (the front checks them);
        `special_tokens=False` for a rendered chat template, which holds its own (no second BOS)."""
        try:
            if prompt is None:
                raise InvalidRequest("prompt is missing: set text or token_ids")
            if isinstance(prompt, str):
                validate_prompt_text(prompt, self.limits, self.tokenizer.max_token_bytes)  # before any tokenizing
            else:
                validate_lengths(len(prompt), params, self.limits)  # before copying millions of ids
            timeline = RequestTimeline(received, use_stamps=self.dilation > 1)
            # Checking every token id is a Python loop over up to a context's worth of them: off the loop too.
            prompt_ids = await self.off_loop(self._tokenized, prompt, params, special_tokens)
            timeline.tokenized()
        except InvalidRequest:
            self.rejected(request_class)
            raise
        request_id = uuid.uuid4().hex  # nodes key requests on it, so it is always the router's: a client's may repeat
        root = self._tracing.root("pdsim.request", received, request_id=request_id, prompt_tokens=len(prompt_ids))
        routed = RoutedRequest(
            request_id=request_id,
            prompt_ids=prompt_ids,
            params=params,
            deadline=None if timeout is None else time.monotonic() + timeout,
            timeline=timeline,
            trace=root.metadata if root is not None else (),
        )
        return Admitted(routed, request_class, received, tuple(stop), include_stop, root)

    def _tokenized(self, prompt: str | Sequence[int], params: SamplingParams, special_tokens: bool) -> list[int]:
        """The prompt's token ids, validated (on a tokenizer thread)."""
        ids = self.tokenizer.encode(prompt, special_tokens) if isinstance(prompt, str) else list(prompt)
        validate_request(ids, params, self.limits)
        return ids

    def rejected(self, request_class: str = "") -> None:
        """Count a request that a front refused as invalid before it could reach `admit`."""
        self._failed(request_class, InvalidRequest.code)

    async def stream(self, admitted: Admitted) -> AsyncGenerator[Piece, None]:
        """The request's pieces. Leaving early (a client that went away, or a stop string) cancels it on the nodes."""
        if self._draining:  # raised from the stream, so each front answers it as a refusal before any token
            self._failed(admitted.request_class, Unavailable.code)
            raise Unavailable("the router is shutting down: send the request to another router or retry later")
        metrics = self._metrics
        detokenizer = IncrementalDetokenizer(self.tokenizer.decode)
        stops = StopStrings(admitted.stop, admitted.include_stop) if admitted.stop else None
        params = admitted.routed.params
        arrivals: list[float] = []
        tokens = 0
        finished = False
        metrics.started(len(admitted.routed.prompt_ids))
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            # Closed on the way out, not when collected: a client that left cancels the nodes' work now.
            async with contextlib.aclosing(self._mode.generate(admitted.routed)) as chunks:
                while (chunk := await self._next(chunks, task)) is not None:
                    if chunk.token_ids:
                        stamped = self.dilation > 1 and chunk.emitted_at
                        arrivals.append(chunk.emitted_at[-1] if stamped else time.perf_counter())
                        tokens += len(chunk.token_ids)
                        metrics.tokens(len(chunk.token_ids))
                    finish = chunk.finish_reason
                    shown = chunk.token_ids
                    stop_token = finish is FinishReason.STOP and shown and shown[-1] in params.stop_token_ids
                    if stop_token and not admitted.include_stop:  # a stop token's text is left out, as vLLM does
                        shown = shown[:-1]
                    text = detokenizer.add(shown)
                    if finish is not None:
                        text += detokenizer.flush()
                    if stops is not None:
                        text, stopped = stops.feed(text, active=tokens >= params.min_tokens)
                        if stopped:
                            finish = FinishReason.STOP
                        elif finish is not None:
                            text += stops.flush()
                    timeline = None
                    if finish is not None:
                        finished = True
                        timeline = admitted.routed.timeline.snapshot(self.dilation)
                        self._completed(admitted, arrivals, tokens, timeline)
                    yield Piece(chunk.token_ids, text, finish, tokens, timeline, chunk.logprobs, chunk.emitted_at)
                    if finish is not None:
                        return  # the last piece; after a stop string, leaving here cancels the calls to the nodes
        except PdsimError as error:
            self._failed(admitted.request_class, error.code)
            log.info("request %s failed: %s", admitted.routed.request_id, error)
            raise self._scrubber.public(error) from error
        except asyncio.CancelledError:
            if task is not None and task in self._cut:  # the drain ended: fail it, as a node failure would
                task.uncancel()
                self._failed(admitted.request_class, Unavailable.code)
                raise Unavailable("the router shut down before the request finished") from None
            if not finished:
                self._failed(admitted.request_class, "CANCELLED")
            raise
        except GeneratorExit:
            if not finished:  # closing the stream after its last piece is no cancellation
                self._failed(admitted.request_class, "CANCELLED")
            raise
        except Exception:
            self._failed(admitted.request_class, PdsimError.code)
            raise
        finally:
            metrics.ended()
            if admitted.root is not None:
                self._tracing.stages(admitted.routed.timeline.router_stages(), admitted.root, time.perf_counter)
                admitted.root.end("" if finished else "the request did not finish")
            if task is not None:
                self._streams.discard(task)
                self._cut.discard(task)

    async def _next(self, chunks: AsyncIterator[Tokens], task: asyncio.Task[Any] | None) -> Tokens | None:
        """The mode's next chunk (None at its end); raises `Unavailable` once the drain has ended the stream."""
        if task is None:
            return await anext(chunks, None)
        if task in self._cut:  # ended while its front was writing to the client
            raise Unavailable("the router shut down before the request finished")
        self._waiting.add(task)
        try:
            return await anext(chunks, None)
        finally:
            self._waiting.discard(task)

    async def drain(self, seconds: float) -> None:
        """Refuse new requests; give in-flight streams `seconds` to finish; then end the rest with UNAVAILABLE
        (they raise it to their front, which sends it as a terminal error) and wait, briefly, until they have."""
        self._draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._streams and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._cut = set(self._streams)
        for task in self._cut & self._waiting:  # the others raise before their next wait on the nodes
            task.cancel()
        if self._cut:
            await asyncio.wait(self._cut, timeout=_CUT_SECONDS)

    def _completed(self, admitted: Admitted, arrivals: list[float], tokens: int, timeline: Timeline) -> None:
        if not arrivals:
            return
        self._metrics.stages(timeline.seconds)
        ttft = arrivals[0] - admitted.received
        e2el = arrivals[-1] - admitted.received
        itls = [b - a for a, b in pairwise(arrivals)]
        self._metrics.completed(admitted.request_class, ttft, e2el, itls, tokens)

    def _failed(self, request_class: str, code: str) -> None:
        self._metrics.failed(request_class, code.lower())
