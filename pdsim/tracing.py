"""Optional OpenTelemetry tracing: one trace per request, a span per stage, across the router and the nodes.

The only module that imports `opentelemetry` (and only when tracing is on: `--otlp-endpoint`, or an exporter a
test passes). Each server owns a `Tracing` with its own tracer provider (no global provider). The router opens a
request's root span when it receives it and passes its context to every node call in gRPC metadata (W3C
`traceparent`); each process records its own stages (`pdsim.core.timeline`) as child spans, with the times it
measured on its own clock, once they are known.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

Metadata = tuple[tuple[str, str], ...]  # gRPC metadata carrying a trace context


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    start: float  # time.monotonic() or time.perf_counter(), as `clock` says
    end: float


Clock = Callable[[], float]


def wall_ns(instant: float, clock: Clock = time.monotonic) -> int:
    """An instant of `clock` (monotonic or perf_counter, in s) as wall-clock nanoseconds, as OpenTelemetry wants."""
    return time.time_ns() - round((clock() - instant) * 1e9)


class RootSpan:
    """A request's span on the router; `metadata` carries it to the nodes."""

    def __init__(self, span: Any, metadata: Metadata) -> None:
        self._span = span
        self.metadata = metadata

    def end(self, error: str = "") -> None:
        if error:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()


class Tracing:
    """A no-op unless given an OTLP/gRPC endpoint (`host:port`) or an exporter."""

    def __init__(self, service: str, endpoint: str | None = None, exporter: SpanExporter | None = None) -> None:
        self._tracer: Any = None
        self._provider: Any = None
        if endpoint is None and exporter is None:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self._provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if exporter is not None:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        self._tracer = self._provider.get_tracer("pdsim")

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def root(
        self, name: str, start: float, clock: Clock = time.perf_counter, **attributes: str | int
    ) -> RootSpan | None:
        """Open a request's root span that started at `start` (an instant of `clock`); None when tracing is off."""
        if self._tracer is None:
            return None
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        span = self._tracer.start_span(name, start_time=wall_ns(start, clock), attributes=attributes)
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
        return RootSpan(span, tuple(carrier.items()))

    def stages(self, stages: Sequence[Stage], parent: Metadata | RootSpan | None, clock: Clock = time.monotonic,
               **attributes: str | int) -> None:  # fmt: skip
        """Record finished stages as spans under `parent` (a root span, or the metadata a call arrived with). A call
        that carried no trace context records nothing: its caller does not trace, and orphan spans help no one."""
        if self._tracer is None or not parent:
            return
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        metadata = parent.metadata if isinstance(parent, RootSpan) else parent
        context = TraceContextTextMapPropagator().extract(dict(metadata))
        for stage in stages:
            span = self._tracer.start_span(
                stage.name, context=context, start_time=wall_ns(stage.start, clock), attributes=attributes
            )
            span.end(end_time=wall_ns(stage.end, clock))

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting."""
        if self._provider is not None:
            self._provider.shutdown()


def trace_metadata(invocation: Sequence[Any] | None) -> Metadata:
    """The trace context among a call's gRPC metadata (empty when it carries none)."""
    return tuple((item.key, item.value) for item in invocation or () if item.key in ("traceparent", "tracestate"))
