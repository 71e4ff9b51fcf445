"""A cluster's shape: which mode, how many nodes of each role, where the router listens, how nodes are configured.

Every default of `pdsim up` lives here; the command line reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from pdsim.core.slo import SloTable
from pdsim.core.topology import Mode, Role
from pdsim.node.config import NodeConfig
from router.config import DEFAULT_HTTP_PORT, DEFAULT_PORT, Policy

TARGETS_DIR_ENV = "PDSIM_PROMETHEUS_TARGETS"


def default_targets_dir() -> Path:
    """Where clusters announce their /metrics endpoints to Prometheus (`make observe` watches it)."""
    configured = os.environ.get(TARGETS_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "pdsim" / "prometheus" / "targets"


class Restart(Enum):
    ALWAYS = "always"  # a process that exits without being asked to is started again, on the same ports
    NEVER = "never"  # it stays down; the cluster ends once every process of a role is down


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    mode: Mode
    workers: int = 2  # colocated workers
    prefill: int = 1  # prefill nodes (disaggregated)
    decode: int = 1  # decode nodes (disaggregated)
    node: NodeConfig = field(default_factory=NodeConfig)  # every node's config; the launcher sets cores and port
    # Splitwise's idea: each pool on its own hardware (e.g. emulated:h100-sxm prefill, emulated:a100-80gb decode);
    # None: the node config's device.
    prefill_device: str | None = None
    decode_device: str | None = None
    host: str = "127.0.0.1"  # where every process listens
    router_port: int = DEFAULT_PORT
    http_port: int | None = DEFAULT_HTTP_PORT  # the router's OpenAI-compatible API; None: off, 0: a free port
    api_key: str | None = None  # the router's HTTP API asks for it (RouterConfig.api_key)
    served_model_name: str | None = None  # the model's name in the HTTP API (RouterConfig.served_model_name)
    routing: Policy = Policy.LEAST_LOADED
    startup_timeout: float = 180.0  # seconds for every process to report healthy
    slos: SloTable = field(default_factory=SloTable)
    targets_dir: Path | None = None  # None: no service discovery file
    restart: Restart = Restart.ALWAYS
    # seconds before the first restart of a process; each further one doubles it, up to restart_backoff_max.
    # A process that then stays up for restart_backoff_max starts from restart_backoff again.
    restart_backoff: float = 0.5
    restart_backoff_max: float = 10.0

    def __post_init__(self) -> None:
        counts = (self.workers,) if self.mode is Mode.COLOCATED else (self.prefill, self.decode)
        if min(counts) < 1:
            raise ValueError(f"every pool needs at least one node, got {counts}")
        if self.node.metrics.port != 0 or self.node.metrics.instance:
            raise ValueError("the launcher gives every process its own free metrics port and instance label")
        if not 0 <= self.router_port < 65536:
            raise ValueError(f"router_port must be in [0, 65535], got {self.router_port}")
        if self.http_port is not None and not 0 <= self.http_port < 65536:
            raise ValueError(f"http_port must be in [0, 65535], got {self.http_port}")
        if not 0 <= self.restart_backoff <= self.restart_backoff_max:
            raise ValueError(
                f"restart backoff must satisfy 0 <= restart_backoff <= restart_backoff_max, got "
                f"{self.restart_backoff} and {self.restart_backoff_max}"
            )
        if self.startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {self.startup_timeout}")
        for role in (Role.PREFILL, Role.DECODE):
            self.node_for(role)  # a bad per-role device is refused now, naming it

    def node_for(self, role: Role) -> NodeConfig:
        """The config of a node of `role`: the shared one on the role's own device, when it has one."""
        device = {Role.PREFILL: self.prefill_device, Role.DECODE: self.decode_device}.get(role)
        if device is None:
            return self.node
        return replace(self.node, model=replace(self.node.model, device=device))

    def roles(self) -> list[Role]:
        if self.mode is Mode.COLOCATED:
            return [Role.COLOCATED] * self.workers
        return [Role.PREFILL] * self.prefill + [Role.DECODE] * self.decode
