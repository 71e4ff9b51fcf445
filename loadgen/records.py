"""What the load generator records per request, and how it is written (one JSON line per request)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadgen.workload import PlannedRequest


@dataclass
class RequestRecord:
    index: int
    request_class: str
    input_tokens: int
    output_tokens_requested: int
    sent: float  # seconds after the run's start
    ended: float = 0.0  # the last token, or the failure
    chunk_times: list[float] = field(default_factory=list)  # arrival of each streamed message
    chunk_tokens: list[int] = field(default_factory=list)  # tokens in each message
    status: str = "ok"  # ok | error | timeout
    code: str = ""  # the gRPC status name of an error
    error: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # the server's timeline (pdsim.core.timeline), if any
    nodes: list[str] = field(default_factory=list)  # the nodes that served it, as the router names them

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.chunk_times)

    @property
    def output_tokens(self) -> int:
        return sum(self.chunk_tokens)

    @classmethod
    def for_planned(cls, planned: PlannedRequest) -> RequestRecord:
        return cls(planned.index, planned.request_class, planned.input_tokens, planned.output_tokens, 0.0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(**data)
