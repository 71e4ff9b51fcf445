"""Tracing across real processes: `pdsim up --otlp-endpoint` (router, prefill and decode nodes, each its own
process) exports to an OTLP/gRPC collector run by the test; each request is one trace holding every process's
stages."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

from benchmarks.chaos.cluster import Cluster
from benchmarks.chaos.load import send_one
from pdsim.core.topology import Mode


class _Collector(otlp_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []  # (trace id, service, span name)
        self._lock = threading.Lock()

    def Export(
        self, request: otlp.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> otlp.ExportTraceServiceResponse:
        with self._lock:
            for resource in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    self.spans += [(s.trace_id.hex(), attributes["service.name"], s.name) for s in scope.spans]
        return otlp.ExportTraceServiceResponse()

    def traces(self) -> dict[str, set[tuple[str, str]]]:
        with self._lock:
            found: dict[str, set[tuple[str, str]]] = {}
            for trace, service, name in self.spans:
                found.setdefault(trace, set()).add((service, name))
            return found


def test_pdsim_up_exports_one_trace_per_request_from_three_processes() -> None:
    collector = _Collector()
    server = grpc.server(ThreadPoolExecutor(2))
    otlp_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    cluster = Cluster(Mode.DISAGGREGATED, {"prefill": 1, "decode": 1}, "tiny",
                      ["--otlp-endpoint", f"127.0.0.1:{port}"])  # fmt: skip
    try:
        for _ in range(3):
            assert asyncio.run(send_one(cluster.router)).kind == "ok"
    finally:
        assert cluster.stop() == 0  # stopping flushes every process's spans
        server.stop(0)
    traces = collector.traces()
    assert len(traces) == 3, traces
    for spans in traces.values():
        services = {service for service, _ in spans}
        assert services == {"pdsim-router", "pdsim-prefill", "pdsim-decode"}, spans
        assert {("pdsim-router", "pdsim.request"), ("pdsim-prefill", "prefill"), ("pdsim-prefill", "kv_push"),
                ("pdsim-decode", "first_decode_step")} <= spans  # fmt: skip
