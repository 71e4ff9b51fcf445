"""OpenTelemetry tracing: one trace per request, its context carried in gRPC metadata from the router to the
prefill and decode nodes (each a server with its own tracer provider), a span per stage, each named service."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pdsim.core.topology import Mode
from pdsim.tracing import Stage, Tracing
from tests.cluster import cluster
from tests.test_timeline import _generate


def _by_service(exporter: InMemorySpanExporter) -> dict[str, set[str]]:
    services: dict[str, set[str]] = {}
    for span in exporter.get_finished_spans():
        services.setdefault(str(span.resource.attributes["service.name"]), set()).add(span.name)
    return services


def test_one_trace_per_request_across_router_prefill_and_decode() -> None:
    exporter = InMemorySpanExporter()

    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, span_exporter=exporter) as c:
            await _generate(c.address)
            await asyncio.sleep(0.2)  # the decode node records its last span as its stream closes
            spans = exporter.get_finished_spans()
            assert len({span.context.trace_id for span in spans}) == 1
            roots = [span for span in spans if span.parent is None]
            assert [span.name for span in roots] == ["pdsim.request"]
            root = roots[0]
            assert root.context is not None and root.start_time is not None
            for span in spans:
                assert span.start_time is not None and span.end_time is not None
                assert root.start_time <= span.start_time <= span.end_time
                if span is not root:
                    assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert _by_service(exporter) == {
                "pdsim-router": {"pdsim.request", "tokenize", "route", "first_token_wait", "kv_handoff"},
                "pdsim-prefill": {"node_receive", "queue", "prefill", "kv_push"},
                "pdsim-decode": {"decode_receive", "decode_queue", "first_decode_step", "decode"},
            }
            exporter.clear()
            await _generate(c.address)
            await _generate(c.address)
            await asyncio.sleep(0.2)
            assert len({span.context.trace_id for span in exporter.get_finished_spans()}) == 2

    asyncio.run(scenario())


def test_colocated_traces_and_no_exporter_means_no_tracing() -> None:
    exporter = InMemorySpanExporter()

    async def scenario() -> None:
        async with cluster(Mode.COLOCATED, workers=1, span_exporter=exporter) as c:
            await _generate(c.address)
            await asyncio.sleep(0.2)
            assert _by_service(exporter)["pdsim-colocated"] == {"node_receive", "queue", "prefill", "generate"}

    asyncio.run(scenario())
    off = Tracing("pdsim-router")
    assert not off.enabled and off.root("pdsim.request", 0.0) is None
    # A node that traces, called without a trace context (its router does not trace), records nothing.
    exporter.clear()
    Tracing("pdsim-decode", exporter=exporter).stages([Stage("decode", 1.0, 2.0)], ())
    assert exporter.get_finished_spans() == ()
