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
    def moves_kv(self) -> str | None:
        """The KV transfer direction this role counts ("sent", "received"), None for a colocated worker."""
        return {Role.PREFILL: "sent", Role.DECODE: "received", Role.COLOCATED: None}[self]


def roles_of(mode: Mode) -> tuple[Role, ...]:
    """The node roles a deployment mode runs."""
    return (Role.COLOCATED,) if mode is Mode.COLOCATED else (Role.PREFILL, Role.DECODE)
