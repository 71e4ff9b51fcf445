"""The router's side of a request's timeline (`pdsim.core.timeline`): the stages it times on its own clock
(`time.perf_counter()`, the one its metrics use) and the nodes' stages as they report them. On an emulated
cluster the first token counts from when its node emitted it, and every duration is reported in emulated seconds
(wall seconds / dilation)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from pdsim.core.timeline import TTFT, Timeline
from pdsim.tracing import Stage


class RequestTimeline:
    """Filled in as the request passes each hop; `snapshot` gives what it has so far."""

    def __init__(self, received: float, use_stamps: bool = False) -> None:
        """`use_stamps`: measure to the nodes' emission times, on this host's clock (an emulated cluster)."""
        self._received = received
        self._use_stamps = use_stamps
        self._seconds: dict[str, float] = {}
        self._nodes: list[str] = []
        self._tokenized = self._sent = self._first = self._decode_sent = received
        self._kv_bytes = self._kv_chunks = 0

    def tokenized(self) -> None:
        self._tokenized = time.perf_counter()
        self._seconds["tokenize"] = self._tokenized - self._received

    def calling(self, node: str) -> None:
        """A call to the node that is to produce the first token (again, when an earlier node refused)."""
        self._sent = time.perf_counter()
        self._nodes = [node]

    def first_token(self, node_timing: Mapping[str, float], emitted_at: float | None = None) -> None:
        """The first token arrived; `node_timing` is the node's own stages (receive, queue, compute). With
        `use_stamps`, the token counts from when its node emitted it (`emitted_at`) rather than its arrival."""
        arrived = time.perf_counter()
        self._first = emitted_at if self._use_stamps and emitted_at else arrived
        node = {"node_receive": node_timing.get("receive", 0.0), "queue": node_timing.get("queue", 0.0),
                "prefill": node_timing.get("compute", 0.0)}  # fmt: skip
        self._seconds["route"] = self._sent - self._tokenized
        self._seconds.update(node)
        self._seconds["transport"] = (self._first - self._sent) - sum(node.values())
        self._seconds[TTFT] = self._first - self._received

    def kv_delivered(self, num_bytes: int, chunks: int, push_seconds: float) -> None:
        self._kv_bytes, self._kv_chunks = num_bytes, chunks
        self._seconds["kv_push"] = push_seconds

    def decoding(self, node: str) -> None:
        self._decode_sent = time.perf_counter()
        self._nodes.append(node)
        self._seconds["kv_handoff"] = self._decode_sent - self._first

    def second_token(self, node_timing: Mapping[str, float]) -> None:
        self._seconds["decode_queue"] = node_timing.get("receive", 0.0) + node_timing.get("queue", 0.0)
        self._seconds["first_decode_step"] = node_timing.get("compute", 0.0)

    def router_stages(self) -> list[Stage]:
        """The router's own intervals so far (time.perf_counter()), for tracing: tokenize, route, the wait for the
        first token (the node's spans fall inside it), and the KV handoff."""
        marks = [
            ("tokenize", self._received, self._tokenized),
            ("route", self._tokenized, self._sent),
            ("first_token_wait", self._sent, self._first),
            ("kv_handoff", self._first, self._decode_sent),
        ]
        return [Stage(name, start, end) for name, start, end in marks if end > start]

    def snapshot(self, dilation: float = 1.0) -> Timeline:
        """What it has so far, every duration divided by `dilation` (wall seconds per emulated second)."""
        seconds = {stage: value / dilation for stage, value in self._seconds.items()}
        return Timeline(seconds, tuple(self._nodes), self._kv_bytes, self._kv_chunks)
