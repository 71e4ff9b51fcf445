"""Keep a launched cluster serving: restart a process that exits without being asked to, on the ports it had.

A restarted node comes back at the address the router already knows (and its /metrics where Prometheus already
looks), so nothing else changes: the router reconnects, in-flight requests on other nodes are untouched. Restarts
back off exponentially (capped) so a process that cannot start does not spin; with `Restart.NEVER` a dead process
stays dead. The cluster ends only when every process of one role (all prefill nodes, all decode nodes, all
colocated workers, or the router) is down for good.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from apps.launcher.processes import Child, Launcher
from apps.launcher.spec import ClusterSpec, Restart
from pdsim.node.config import NodeConfig
from router.config import RouterConfig

log = logging.getLogger(__name__)


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def pinned(child: Child) -> object:
    """The child's config with every port it bound (gRPC, HTTP, metrics) fixed, for a restart in its place."""
    config = child.config
    assert isinstance(config, NodeConfig | RouterConfig), config
    metrics = config.metrics
    if child.endpoints.get("metrics"):
        metrics = dataclasses.replace(metrics, port=_port(child.endpoints["metrics"]))
    if isinstance(config, RouterConfig):
        http = child.endpoints.get("http")
        return dataclasses.replace(
            config, port=_port(child.address), http_port=_port(http) if http else config.http_port, metrics=metrics
        )
    return dataclasses.replace(config, port=_port(child.address), metrics=metrics)


@dataclass
class _Down:
    """A child that exited: when it may start again, and the config to start it with."""

    since: float
    restart_at: float | None  # None: never
    config: object


class Supervisor:
    def __init__(
        self,
        launcher: Launcher,
        spec: ClusterSpec,
        clock: Callable[[], float] = time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        self._launcher = launcher
        self._spec = spec
        self._clock = clock
        self._failures: dict[str, int] = {}  # restarts in a row, per child name
        self._down: dict[str, _Down] = {}
        self._out = out or sys.stderr
        self.restarts = 0

    def step(self) -> str | None:
        """Check every child once: note exits, restart what is due, record restarted children's ready lines.
        Returns why the cluster must end, or None while it serves."""
        now = self._clock()
        for child in self._launcher.collect_ready():
            self._say(f"{child.name} is back on {child.address} (pid {child.process.pid})")
        for child in self._launcher.children:
            if child.name in self._down:
                self._maybe_restart(child, now)
            elif child.process.poll() is not None:
                self._exited(child, now)
            elif child.address and now - child.started > self._spec.restart_backoff_max:
                self._failures.pop(child.name, None)  # it stayed up: the next restart is quick again
        return self._role_gone()

    def _exited(self, child: Child, now: float) -> None:
        code = child.process.returncode
        if self._spec.restart is Restart.NEVER:
            self._down[child.name] = _Down(now, None, child.config)
            self._say(f"{child.name} exited with code {code}; not restarting it")
            return
        failures = self._failures.get(child.name, 0)
        delay = min(self._spec.restart_backoff * 2**failures, self._spec.restart_backoff_max)
        self._failures[child.name] = failures + 1
        # A child that died again before its ready line already runs from its pinned config.
        config = pinned(child) if child.address else child.config
        self._down[child.name] = _Down(now, now + delay, config)
        self._say(f"{child.name} exited with code {code}; restarting it in {delay:g} s")

    def _maybe_restart(self, child: Child, now: float) -> None:
        down = self._down[child.name]
        if down.restart_at is None or now < down.restart_at:
            return
        del self._down[child.name]
        self._launcher.respawn(child, down.config)
        self.restarts += 1

    def _role_gone(self) -> str | None:
        roles: dict[str, list[Child]] = {}
        for child in self._launcher.children:
            roles.setdefault(child.command, []).append(child)
        for role, children in roles.items():
            down = [self._down.get(c.name) for c in children]
            if all(d is not None and d.restart_at is None for d in down):
                return f"every {role} process is down ({', '.join(c.name for c in children)})"
        return None

    def _say(self, message: str) -> None:
        print(f"pdsim up: {message}", file=self._out, flush=True)
