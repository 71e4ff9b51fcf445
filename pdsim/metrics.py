"""Prometheus metrics: the only module that imports `prometheus_client`.

Each process (or each server object, so tests can run many in one process) owns a `MetricsEndpoint`: its
own registry and the HTTP server that exposes `/metrics` on it. `NodeMetrics` and `RouterMetrics` turn plain
facts (a step's stats, a finished request's timings) into series; nothing else in pdsim knows this library.
Names follow docs/metrics.md: prefix `pdsim_`, base units, vLLM's names where vLLM has one, and the labels
`mode`, `role` and `instance` on every series (none with unbounded values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from pdsim.core.slo import SloTable
from pdsim.core.timeline import STAGES

# Milliseconds on a GPU to tens of seconds on a loaded CPU: about four buckets per factor of ten.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
LABELS = ("mode", "role", "instance")
# A request's outcome: ok, cancelled (the client left) or the lower-case gRPC status of its failure. Every series
# exists from the start, so the first failure of a kind shows in rate() and in the attainment denominator.
OUTCOMES = (
    "ok", "cancelled", "invalid_argument", "resource_exhausted", "unavailable", "deadline_exceeded", "not_found",
    "failed_precondition", "data_loss", "already_exists", "internal",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port; the process prints the address it bound
    instance: str = ""  # the `instance` label; empty means the process's gRPC address
    otlp_endpoint: str | None = None  # tracing (pdsim.tracing): where spans go over OTLP/gRPC; None: no tracing

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"metrics port must be in [0, 65535], got {self.port}")


@dataclass(frozen=True, slots=True)
class SeriesLabels:
    mode: str  # colocated | disaggregated
    role: str  # router | prefill | decode | colocated
    instance: str

    def values(self) -> tuple[str, str, str]:
        return self.mode, self.role, self.instance


class MetricsEndpoint:
    """A registry and the HTTP server that exposes it (`start`/`stop`; nothing is served when disabled)."""

    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.address = ""
        self._server: WSGIServer | None = None

    def start(self) -> str:
        """Serve `/metrics`; returns `host:port`, or "" when metrics are disabled."""
        if self.config.enabled:
            server, _ = start_http_server(self.config.port, self.config.host, self.registry)
            self._server = server
            self.address = f"{self.config.host}:{server.server_port}"
        return self.address

    def render(self) -> tuple[bytes, str]:
        """The registry in Prometheus' text format and its content type, for another server to serve."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class StepFacts(Protocol):
    """One engine step (the engine's `StepStats` is one); a mixed step computes prompt and decode tokens."""

    @property
    def batch_size(self) -> int: ...
    @property
    def prefill_tokens(self) -> int: ...
    @property
    def decode_tokens(self) -> int: ...
    @property
    def generated(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def queue_seconds(self) -> Sequence[float]: ...
    @property
    def modeled_seconds(self) -> float | None:
        """An emulated step's cost-model time; None on a real device."""
        ...


class LoadFacts(Protocol):
    """What a node holds right now, read when Prometheus scrapes (the engine's `LoadSnapshot` is one)."""

    @property
    def waiting(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def kv_bytes_held(self) -> int: ...
    @property
    def kv_bytes_capacity(self) -> int: ...


class _LoadCollector(Collector):
    def __init__(self, labels: SeriesLabels, read: Callable[[], LoadFacts]) -> None:
        self._labels = labels
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts = self._read()
        values = list(self._labels.values())
        series = (
            ("pdsim_num_requests_waiting", "Requests queued on this node", facts.waiting),
            ("pdsim_num_requests_running", "Requests past prefill holding KV on this node", facts.running),
            ("pdsim_kv_held_bytes", "KV cache bytes held (running and staged requests)", facts.kv_bytes_held),
            ("pdsim_kv_capacity_bytes", "KV cache bytes this node can hold", facts.kv_bytes_capacity),
        )
        for name, documentation, value in series:
            family = GaugeMetricFamily(name, documentation, labels=LABELS)
            family.add_metric(values, value)
            yield family
        usage = GaugeMetricFamily(
            "pdsim_kv_cache_usage_perc", "KV held / capacity, in [0, 1] (vLLM's name)", labels=LABELS
        )
        usage.add_metric(values, facts.kv_bytes_held / facts.kv_bytes_capacity if facts.kv_bytes_capacity else 0.0)
        yield usage


def _dilation_gauge(registry: CollectorRegistry, labels: SeriesLabels, dilation: float) -> None:
    """`pdsim_time_dilation`: wall seconds per emulated second (1 on real devices). Every duration pdsim exports
    is in emulated seconds; a rate Prometheus takes over wall time is that many times too low."""
    gauge = Gauge("pdsim_time_dilation", "Wall seconds per emulated second (1: real devices)", LABELS,
                  registry=registry)  # fmt: skip
    gauge.labels(*labels.values()).set(dilation)


class NodeMetrics:
    """A worker's stage metrics: queue, steps, batch sizes, busy time, tokens, KV traffic and KV held."""

    def __init__(
        self,
        registry: CollectorRegistry,
        labels: SeriesLabels,
        load: Callable[[], LoadFacts],
        kv_directions: Sequence[str] = (),
        dilation: float = 1.0,
    ) -> None:
        """`kv_directions`: which KV traffic the role has, `sent` (prefill) or `received` (decode). `dilation`:
        an emulated node's wall seconds per emulated second; every duration is recorded in emulated seconds."""
        self._scale = 1.0 / dilation
        _dilation_gauge(registry, labels, dilation)
        base = labels.values()
        phase = (*LABELS, "phase")
        direction = (*LABELS, "direction")
        step_seconds = Histogram(
            "pdsim_step_seconds", "Engine step time, by phase", phase, registry=registry, buckets=LATENCY_BUCKETS
        )
        batch_size = Histogram(
            "pdsim_batch_size", "Requests per engine step, by phase", phase, registry=registry, buckets=BATCH_BUCKETS
        )
        busy = Counter("pdsim_busy_seconds", "Time the engine spent in steps, by phase", phase, registry=registry)
        modeled = Counter(
            "pdsim_step_modeled_seconds",
            "Emulated nodes: the cost model's time for the steps, by phase (busy / modeled - 1 is the framework's "
            "own overhead that the dilation did not hide)",
            phase,
            registry=registry,
        )
        self._modeled = {name: modeled.labels(*base, name) for name in ("prefill", "decode", "mixed")}
        self._queue_seconds = Histogram(
            "pdsim_request_queue_time_seconds",
            "Time a request waited on this node before its first step here",
            LABELS,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        ).labels(*base)
        self._prompt_tokens = Counter(
            "pdsim_prompt_tokens", "Prompt tokens prefilled on this node", LABELS, registry=registry
        ).labels(*base)
        self._generation_tokens = Counter(
            "pdsim_generation_tokens", "Tokens generated on this node", LABELS, registry=registry
        ).labels(*base)
        step_tokens = Counter(
            "pdsim_step_tokens",
            "Tokens the engine's steps computed, by kind: prompt (prefill) or running decode",
            (*LABELS, "kind"),
            registry=registry,
        )
        self._step_tokens = {kind: step_tokens.labels(*base, kind) for kind in ("prefill", "decode")}
        kv_bytes = Counter(
            "pdsim_kv_transfer_bytes", "KV cache bytes moved, by direction", direction, registry=registry
        )
        kv_seconds = Histogram(
            "pdsim_kv_transfer_seconds",
            "Time to move one request's KV cache, by direction",
            direction,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._kv_bytes = {d: kv_bytes.labels(*base, d) for d in kv_directions}
        self._kv_seconds = {d: kv_seconds.labels(*base, d) for d in kv_directions}
        self._phases = {
            name: (step_seconds.labels(*base, name), batch_size.labels(*base, name), busy.labels(*base, name))
            for name in ("prefill", "decode", "mixed")
        }
        registry.register(_LoadCollector(labels, load))

    def step(self, phase: str, stats: StepFacts) -> None:
        """One engine step of `phase`: prefill, decode or mixed (decodes and prompt chunks in one forward)."""
        step_seconds, batch, busy = self._phases[phase]
        if stats.modeled_seconds is not None:  # an emulated step: already in emulated seconds
            self._modeled[phase].inc(stats.modeled_seconds)
        seconds = stats.seconds * self._scale
        step_seconds.observe(seconds)
        batch.observe(stats.batch_size)
        busy.inc(seconds)
        self._prompt_tokens.inc(stats.prefill_tokens)
        self._generation_tokens.inc(stats.generated)
        self._step_tokens["prefill"].inc(stats.prefill_tokens)
        self._step_tokens["decode"].inc(stats.decode_tokens)
        for waited in stats.queue_seconds:
            self._queue_seconds.observe(waited * self._scale)

    def kv_transfer(self, direction: str, num_bytes: int, seconds: float) -> None:
        """One request's KV, `sent` by a prefill node or `received` by a decode node."""
        self._kv_bytes[direction].inc(num_bytes)
        self._kv_seconds[direction].observe(seconds * self._scale)


class RouterMetrics:
    """The user-facing latencies (observed where the client stands) and request outcomes, per SLO class."""

    def __init__(
        self, registry: CollectorRegistry, labels: SeriesLabels, slos: SloTable, dilation: float = 1.0
    ) -> None:
        """`dilation`: the cluster's wall seconds per emulated second; latencies are given to it in wall seconds
        and recorded, and judged against the SLOs, in emulated ones."""
        base = labels.values()
        self.slos = slos
        self._scale = 1.0 / dilation
        _dilation_gauge(registry, labels, dilation)

        def histogram(name: str, documentation: str) -> Histogram:
            return Histogram(name, documentation, LABELS, registry=registry, buckets=LATENCY_BUCKETS).labels(*base)

        self._ttft = histogram("pdsim_time_to_first_token_seconds", "TTFT of completed requests")
        self._itl = histogram("pdsim_inter_token_latency_seconds", "Gaps between streamed chunks of completed requests")
        self._tpot = histogram(
            "pdsim_request_time_per_output_token_seconds", "TPOT of completed requests with over one output token"
        )
        self._e2el = histogram("pdsim_e2e_request_latency_seconds", "End-to-end latency of completed requests")
        outcomes = Counter(
            "pdsim_requests",
            "Requests by outcome (ok, or the gRPC status name of the failure) and SLO class",
            (*LABELS, "outcome", "slo_class"),
            registry=registry,
        )
        slo_met = Counter(
            "pdsim_requests_slo_met", "Completed requests that met their class's SLO", (*LABELS, "slo_class"),
            registry=registry,
        )  # fmt: skip
        self._slo_met = {name: slo_met.labels(*base, name) for name in slos.names()}
        self._outcomes_by = {(o, c): outcomes.labels(*base, o, c) for o in OUTCOMES for c in slos.names()}
        self._prompt_tokens = Counter(
            "pdsim_prompt_tokens", "Prompt tokens of requests the router accepted", LABELS, registry=registry
        ).labels(*base)
        self._generation_tokens = Counter(
            "pdsim_generation_tokens", "Tokens streamed back to clients", LABELS, registry=registry
        ).labels(*base)
        self._running = Gauge(
            "pdsim_num_requests_running", "Requests the router is streaming", LABELS, registry=registry
        ).labels(*base)
        stage = Histogram(
            "pdsim_request_stage_seconds", "Completed requests' time in each stage (pdsim.core.timeline)",
            (*LABELS, "stage"), registry=registry, buckets=LATENCY_BUCKETS,
        )  # fmt: skip
        self._stages = {name: stage.labels(*base, name) for name in STAGES}

    def stages(self, seconds: Mapping[str, float]) -> None:
        """A completed request's stage durations (a stage it did not pass is absent)."""
        for name, value in seconds.items():  # already in emulated seconds (`RequestTimeline.snapshot`)
            if name in self._stages:
                self._stages[name].observe(max(0.0, value))

    def started(self, prompt_tokens: int) -> None:
        self._prompt_tokens.inc(prompt_tokens)
        self._running.inc()

    def tokens(self, count: int) -> None:
        self._generation_tokens.inc(count)

    def ended(self) -> None:
        self._running.dec()

    def completed(
        self, request_class: str, ttft: float, e2el: float, itls: Sequence[float], output_tokens: int
    ) -> None:
        """A request that streamed to its end; TPOT as METRICS.md defines it."""
        name = self.slos.class_of(request_class)
        ttft, e2el, itls = ttft * self._scale, e2el * self._scale, [gap * self._scale for gap in itls]
        tpot = (e2el - ttft) / (output_tokens - 1) if output_tokens > 1 else None
        self._ttft.observe(ttft)
        self._e2el.observe(e2el)
        if tpot is not None:
            self._tpot.observe(tpot)
        for gap in itls:
            self._itl.observe(gap)
        self._outcomes_by["ok", name].inc()
        if self.slos.slo(name).met(ttft, tpot, e2el):
            self._slo_met[name].inc()

    def failed(self, request_class: str, outcome: str) -> None:
        """`outcome`: one of `OUTCOMES`, e.g. `invalid_argument` or `cancelled` (anything else counts as internal)."""
        key = (outcome if outcome in OUTCOMES else "internal", self.slos.class_of(request_class))
        self._outcomes_by[key].inc()


def sample_sums(text: str) -> dict[str, float]:
    """A /metrics page's samples summed over their labels, by sample name (`pdsim_step_seconds_sum`, ...): for
    benchmarks that read a process's totals."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums
