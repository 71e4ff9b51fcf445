"""Where one request's time went: its stages, each a duration measured on one process's clock.

The router returns a request's timeline with its last message; the load generator records it and the report
breaks TTFT down with it (docs/metrics.md defines each stage). Clocks differ between processes, so no stage is
a difference of two processes' timestamps: a node measures its own stages, and the router derives `transport`
as its own wait for the first token less the node's stages within it.

Up to the first token (they add up to the router's TTFT, `ttft`):
- `tokenize`: receipt to prompt ids (router; validation included).
- `route`: prompt ids to the call that served it (router; includes nodes that refused first).
- `node_receive`: the call's arrival on the prefill node (or colocated worker) to its engine's queue.
- `queue`: waiting in that engine's queue for a first step.
- `prefill`: that engine's steps up to the first token (every chunk of a chunked prompt, and what ran beside).
- `transport`: the rest of the router's wait: gRPC both ways and the node's event loop.

After it (disaggregated): `kv_push` (the prefill node's push of the KV to the decode node), `kv_handoff` (router:
first token to the Decode call, which waits for the push), `decode_queue` (decode node: the call's arrival to the
request's first step, waiting for a slot), `first_decode_step` (that step, up to the second token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

TTFT_STAGES = ("tokenize", "route", "node_receive", "queue", "prefill", "transport")
AFTER_FIRST_TOKEN = ("kv_push", "kv_handoff", "decode_queue", "first_decode_step")
STAGES = (*TTFT_STAGES, *AFTER_FIRST_TOKEN)
TTFT = "ttft"  # the router's own time to first token, beside the stages


@dataclass(frozen=True, slots=True)
class Timeline:
    seconds: Mapping[str, float] = field(default_factory=dict)  # stage (or `ttft`) -> seconds
    nodes: tuple[str, ...] = ()  # the nodes that served the request, in order (their names, not addresses)
    kv_bytes: int = 0
    kv_chunks: int = 0

    def ttft_stages(self) -> dict[str, float]:
        """The stages before the first token that this request passed (zeros left out)."""
        return {stage: self.seconds[stage] for stage in TTFT_STAGES if stage in self.seconds}
