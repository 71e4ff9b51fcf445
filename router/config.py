"""Router configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pdsim.core.slo import SloTable
from pdsim.core.topology import Mode
from pdsim.metrics import MetricsConfig

DEFAULT_PORT = 50051  # where `pdsim router` and `pdsim up` listen unless told, and where clients look
DEFAULT_HTTP_PORT = 8000  # the OpenAI-compatible API's


class Policy(Enum):
    ROUND_ROBIN = "round-robin"
    LEAST_LOADED = "least-loaded"


@dataclass(frozen=True, slots=True)
class RouterConfig:
    mode: Mode
    workers: tuple[str, ...] = ()  # colocated
    prefill: tuple[str, ...] = ()  # disaggregated
    decode: tuple[str, ...] = ()  # disaggregated
    policy: Policy = Policy.LEAST_LOADED
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 picks a free port
    http_host: str = "127.0.0.1"  # the OpenAI-compatible HTTP API
    http_port: int | None = DEFAULT_HTTP_PORT  # None: no HTTP API; 0 picks a free port
    tokenizer: str | None = None  # directory with tokenizer.json; default: the model path the nodes report
    served_model_name: str | None = None  # the model's name in the HTTP API; default: the checkpoint directory's
    api_key: str | None = None  # the HTTP API's /v1 answers 401 without "Authorization: Bearer <api_key>"
    connect_timeout: float = 60.0  # how long to wait for every node at start-up
    load_poll_seconds: float = 0.2  # also how often each node's health is probed
    # A node that does not answer a health probe within this is out of rotation until one succeeds again.
    probe_timeout: float = 1.0
    # The deadline of a request whose client set none: every call to the nodes for it carries what is left of
    # it, so no request can wait forever on a node that hangs.
    request_timeout: float = 600.0
    slos: SloTable = field(default_factory=SloTable)  # what the router's SLO counters judge against
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # On SIGTERM: seconds in-flight streams get to finish (new ones are refused) before they end with an error
    drain_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.mode is Mode.COLOCATED and (not self.workers or self.prefill or self.decode):
            raise ValueError("colocated mode needs --workers and no --prefill/--decode")
        if self.mode is Mode.DISAGGREGATED and (not self.prefill or not self.decode or self.workers):
            raise ValueError("disaggregated mode needs --prefill and --decode and no --workers")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.http_port is not None and not 0 <= self.http_port < 65536:
            raise ValueError(f"http_port must be in [0, 65535], got {self.http_port}")
        if self.drain_seconds < 0:
            raise ValueError(f"drain_seconds must be >= 0, got {self.drain_seconds}")
        if self.served_model_name is not None and not self.served_model_name.strip():
            raise ValueError("served_model_name must not be empty")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty (leave it out to serve without one)")
        if self.load_poll_seconds <= 0:
            raise ValueError(f"load_poll_seconds must be > 0, got {self.load_poll_seconds}")
        if self.probe_timeout <= 0:
            raise ValueError(f"probe_timeout must be > 0, got {self.probe_timeout}")
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout must be > 0, got {self.request_timeout}")

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.workers + self.prefill + self.decode
