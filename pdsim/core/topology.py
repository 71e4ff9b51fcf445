"""Who does what in a cluster: the roles a node can play and the two ways to deploy them.

Torch-free and grpc-free: every layer, from the engine to the applications, names roles and modes with these.
"""

from __future__ import annotations

from enum import Enum


class Mode(Enum):
    COLOCATED = "colocated"  # every worker runs both phases
    DISAGGREGATED = "disaggregated"  # prefill nodes hand KV to decode nodes


class Role(Enum):
    PREFILL = "prefill"
    DECODE = "decode"
    COLOCATED = "colocated"  # a colocated worker: prefill and decode on one model

    @property
    def mode(self) -> Mode:
        return Mode.COLOCATED if self is Role.COLOCATED else Mode.DISAGGREGATED

    @property
    def kv_direction(self) -> str | None:
        """The way this role moves KV ("sent", "received"); None for a colocated worker, which moves none."""
        return {Role.PREFILL: "sent", Role.DECODE: "received", Role.COLOCATED: None}[self]
