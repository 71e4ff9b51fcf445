"""The launcher's restart policy without processes: exponential, capped backoff that resets once a process stays
up; the same ports on restart; `never` ends the cluster only when a whole role is down."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from apps.launcher.processes import Child
from apps.launcher.spec import ClusterSpec, Restart
from apps.launcher.supervise import Supervisor
from pdsim.core.topology import Mode
from pdsim.metrics import MetricsConfig
from pdsim.node.config import NodeConfig
from router.config import RouterConfig


@dataclass
class _Process:
    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class _FakeLauncher:
    children: list[Child]
    respawned: list[tuple[str, object]] = field(default_factory=list)

    def collect_ready(self) -> list[Child]:
        return []

    def respawn(self, child: Child, config: object) -> None:
        self.respawned.append((child.name, config))
        child.config, child.address, child.endpoints = config, "", {}
        child.process = _Process(100 + len(self.respawned))  # type: ignore[assignment]


def _child(name: str, command: str, config: object, port: int) -> Child:
    child = Child(name, command, config, _Process(port))  # type: ignore[arg-type]
    child.address, child.endpoints = f"127.0.0.1:{port}", {"metrics": f"127.0.0.1:{port + 1}"}
    return child


def _cluster(restart: Restart) -> tuple[Supervisor, _FakeLauncher, list[float]]:
    now = [0.0]
    router = RouterConfig(mode=Mode.DISAGGREGATED, prefill=("a:1",), decode=("b:2", "c:3"), port=0, http_port=0)
    children = [
        _child("prefill-0", "prefill", NodeConfig(), 4000),
        _child("decode-1", "decode", NodeConfig(), 5000),
        _child("decode-2", "decode", NodeConfig(), 6000),
        _child("router", "router", router, 7000),
    ]
    children[-1].endpoints["http"] = "127.0.0.1:7002"
    spec = ClusterSpec(Mode.DISAGGREGATED, restart=restart, restart_backoff=0.5, restart_backoff_max=4.0)
    launcher = _FakeLauncher(children)
    supervisor = Supervisor(launcher, spec, clock=lambda: now[0], out=io.StringIO())  # type: ignore[arg-type]
    return supervisor, launcher, now


def _crash(child: Child) -> None:
    child.process.returncode = -9


def _come_back(child: Child, port: int) -> None:
    child.address, child.endpoints = f"127.0.0.1:{port}", {"metrics": f"127.0.0.1:{port + 1}"}


def test_restarts_back_off_exponentially_up_to_the_cap_and_reset_after_staying_up() -> None:
    supervisor, launcher, now = _cluster(Restart.ALWAYS)
    decode = launcher.children[1]
    delays = []
    for restarts in range(1, 6):  # a node that dies as soon as it is back
        _crash(decode)
        assert supervisor.step() is None
        crashed = now[0]
        while len(launcher.respawned) < restarts:
            now[0] += 0.05
            assert supervisor.step() is None
        delays.append(round(now[0] - crashed, 1))
        _come_back(decode, 5000)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    pinned = launcher.respawned[0][1]
    assert isinstance(pinned, NodeConfig) and pinned.port == 5000 and pinned.metrics.port == 5001
    decode.started = now[0]
    now[0] += 5  # up for longer than the cap: the next restart is quick again
    assert supervisor.step() is None
    _crash(decode)
    supervisor.step()
    now[0] += 0.55
    supervisor.step()
    assert len(launcher.respawned) == 6


def test_a_restarted_router_keeps_its_grpc_http_and_metrics_ports() -> None:
    supervisor, launcher, now = _cluster(Restart.ALWAYS)
    _crash(launcher.children[-1])
    supervisor.step()
    now[0] += 1
    supervisor.step()
    name, config = launcher.respawned[0]
    assert name == "router" and isinstance(config, RouterConfig)
    assert (config.port, config.http_port, config.metrics) == (7000, 7002, MetricsConfig(port=7001))


def test_with_restart_never_only_a_whole_role_down_ends_the_cluster() -> None:
    supervisor, launcher, now = _cluster(Restart.NEVER)
    _crash(launcher.children[1])
    assert supervisor.step() is None  # decode-2 still serves
    now[0] += 60
    assert supervisor.step() is None and launcher.respawned == []
    _crash(launcher.children[2])
    assert supervisor.step() == "every decode process is down (decode-1, decode-2)"
