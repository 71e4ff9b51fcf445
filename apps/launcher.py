"""`pdsim up`: start a whole cluster on this machine and stop every process it started.

Each node is its own process on its own cores (CPU) or device; the router starts once every node reports
healthy. Children run in their own session (so a terminal's Ctrl-C reaches only the launcher, which stops
them in order) and get SIGTERM if the launcher dies. Ctrl-C or SIGTERM stops everything within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pdsim.core.slo import SloTable
from pdsim.metrics import MetricsConfig
from pdsim.models.presets import ensure_preset, is_preset
from pdsim.node.config import NodeConfig
from pdsim.rpc.server import parse_ready_line, wait_healthy

log = logging.getLogger(__name__)

_STOP_SECONDS = 5.0
TARGETS_DIR_ENV = "PDSIM_PROMETHEUS_TARGETS"


def default_targets_dir() -> Path:
    """Where clusters announce their /metrics endpoints to Prometheus (`make observe` watches it)."""
    configured = os.environ.get(TARGETS_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "pdsim" / "prometheus" / "targets"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    mode: str
    workers: int
    prefill: int
    decode: int
    node: NodeConfig
    host: str = "127.0.0.1"
    router_port: int = 50051
    http_port: int | None = None  # the router's OpenAI-compatible API; None: off, 0: a free port
    routing: str = "least-loaded"
    startup_timeout: float = 180.0
    slos: SloTable = field(default_factory=SloTable)
    targets_dir: Path | None = None  # None: no service discovery file

    def __post_init__(self) -> None:
        if self.mode not in ("colocated", "disaggregated"):
            raise ValueError(f"mode must be colocated or disaggregated, got {self.mode!r}")
        counts = (self.workers,) if self.mode == "colocated" else (self.prefill, self.decode)
        if min(counts) < 1:
            raise ValueError(f"every pool needs at least one node, got {counts}")
        if self.node.metrics.port != 0 or self.node.metrics.instance:
            raise ValueError("the launcher gives every process its own free metrics port and instance label")
        if self.http_port is not None and not 0 <= self.http_port < 65536:
            raise ValueError(f"http_port must be in [0, 65535], got {self.http_port}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClusterSpec:
        from apps.cli import http_port_from, node_config_from
        from pdsim.core.slo import parse_slo_args

        args.cpus = None
        node = dataclasses.replace(node_config_from(args), host=args.host, port=0)
        targets = Path(args.targets_dir) if args.targets_dir else default_targets_dir()
        return cls(
            args.mode, args.workers, args.prefill, args.decode, node, args.host, args.port,
            http_port_from(args), args.routing, args.startup_timeout, parse_slo_args(args.slo),
            None if args.no_metrics else targets,
        )  # fmt: skip

    def roles(self) -> list[str]:
        if self.mode == "colocated":
            return ["worker"] * self.workers
        return ["prefill"] * self.prefill + ["decode"] * self.decode


def node_argv(role: str, config: NodeConfig) -> list[str]:
    """The command line that starts `config` as a node process (the inverse of `cli.node_config_from`)."""
    model, engine = config.model, config.engine
    argv = [role, "--host", config.host, "--port", str(config.port), "--model", model.model]
    argv += ["--device", model.device, "--dtype", model.dtype, "--max-batch", str(engine.max_batch)]
    argv += ["--prefill-token-budget", str(engine.prefill_token_budget), "--policy", engine.policy.value]
    argv += ["--max-waiting", str(engine.max_waiting), "--kv-lease", str(engine.kv_lease_seconds)]
    argv += [
        "--default-max-tokens",
        str(config.default_max_tokens),
        "--kv-chunk-bytes",
        str(config.kv_chunk_bytes),
    ]
    if model.max_context is not None:
        argv += ["--max-context", str(model.max_context)]
    if engine.staging_tokens is not None:
        argv += ["--staging-tokens", str(engine.staging_tokens)]
    if config.cpus is not None:
        argv += ["--cpus", ",".join(map(str, config.cpus))]
    return argv + metrics_argv(config.metrics)


def metrics_argv(config: MetricsConfig) -> list[str]:
    if not config.enabled:
        return ["--no-metrics"]
    argv = ["--metrics-host", config.host, "--metrics-port", str(config.port)]
    return argv + (["--instance", config.instance] if config.instance else [])


def assign_cores(count: int, available: list[int]) -> list[tuple[int, ...]]:
    """One core per node while cores last; beyond that nodes share, which the launcher warns about."""
    return [(available[i % len(available)],) for i in range(count)]


# Loaded here, not in the child: between fork and exec only async-signal-safe work is safe (no dlopen).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the launcher died before prctl took effect
                os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    address: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)  # e.g. metrics: host:port, from the ready line
    cores: tuple[int, ...] | None = None


class Launcher:
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.children: list[Child] = []
        self.targets_file: Path | None = None
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()

    def spawn(self, name: str, argv: list[str], cores: tuple[int, ...] | None = None) -> Child:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        process = subprocess.Popen(
            [sys.executable, "-m", "apps", "--log-level", level, *argv],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        child = Child(name, process, cores=cores)
        self.children.append(child)
        assert process.stdout is not None
        threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True).start()
        return child

    def _pump(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put((name, line.strip()))

    def wait_ready(self, pending: list[Child], timeout: float) -> None:
        """Collect each child's ready line (its address), failing fast if one exits."""
        by_name = {c.name: c for c in pending}
        deadline = time.monotonic() + timeout
        while any(not c.address for c in pending):
            for child in pending:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with code {child.process.returncode} during start-up")
            if time.monotonic() > deadline:
                late = ", ".join(c.name for c in pending if not c.address)
                raise TimeoutError(f"{late} did not start within {timeout:.0f} s")
            try:
                name, line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            ready = parse_ready_line(line)
            if ready is not None and name in by_name:
                by_name[name].address, by_name[name].endpoints = ready

    def write_targets(self, directory: Path) -> Path:
        """A Prometheus file-based service discovery file listing every process's /metrics endpoint."""
        groups = [
            {"targets": [c.endpoints["metrics"]], "labels": {"mode": self.spec.mode, "pdsim_process": c.name}}
            for c in self.children
            if c.endpoints.get("metrics")
        ]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"pdsim-{self.spec.mode}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        partial = path.with_suffix(".json.tmp")  # Prometheus may read at any time: replace it whole
        partial.write_text(json.dumps(groups, indent=2))
        partial.replace(path)
        self.targets_file = path
        return path

    @property
    def router_address(self) -> str:
        router = self.children[-1]
        assert router.name == "router" and router.address, "the cluster has not started"
        return router.address

    def stop_all(self) -> None:
        """SIGTERM the router, then the nodes (so no new request reaches a node going away); SIGKILL whatever
        is still running after `_STOP_SECONDS`. Signals are ignored meanwhile: this cleanup is bounded."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        if self.targets_file is not None:  # Prometheus stops scraping processes that are going away
            self.targets_file.unlink(missing_ok=True)
        try:
            deadline = time.monotonic() + _STOP_SECONDS
            routers = [c for c in self.children if c.name == "router"]
            nodes = [c for c in self.children if c.name != "router"]
            for group in (routers, nodes):
                for child in group:
                    if child.process.poll() is None:
                        child.process.send_signal(signal.SIGTERM)
                for child in group:
                    try:
                        child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        log.warning("%s did not stop in %.0f s; killing it", child.name, _STOP_SECONDS)
                        child.process.kill()
                        child.process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def started_cluster(spec: ClusterSpec, launcher: Launcher | None = None) -> Iterator[Launcher]:
    """A healthy cluster for the `with` block (the router's address is `launcher.router_address`);
    every process is stopped on the way out, whatever happened."""
    launcher = launcher or Launcher(spec)
    try:
        if is_preset(spec.node.model.model):
            ensure_preset(spec.node.model.model)  # once, before the nodes race to create it
        _start(launcher, spec)
        yield launcher
    finally:
        launcher.stop_all()


def interrupt(signum: int, frame: object) -> None:
    """A signal handler that unwinds like Ctrl-C, so `finally` blocks stop what was started."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_cluster(spec: ClusterSpec) -> int:
    # SIGTERM behaves like Ctrl-C: whatever the launcher is doing (creating a model, waiting for health), it
    # unwinds through `started_cluster`, which stops every child.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with started_cluster(spec) as launcher:
            _announce(launcher, spec)
            while True:
                time.sleep(0.5)
                dead = [c for c in launcher.children if c.process.poll() is not None]
                if dead:
                    print(f"pdsim up: {dead[0].name} exited with code {dead[0].process.returncode}", file=sys.stderr)
                    return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"pdsim up: {error}", file=sys.stderr)
        return 1
    finally:
        print("pdsim up: every process stopped", file=sys.stderr)


def _start(launcher: Launcher, spec: ClusterSpec) -> None:
    roles = spec.roles()
    on_cpu = spec.node.model.device == "cpu"
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = assign_cores(len(roles), available) if on_cpu and available else [None] * len(roles)
    if on_cpu and len(roles) > len(available):
        log.warning("%d nodes share %d cores: they are not separate devices", len(roles), len(available))
    nodes = [
        launcher.spawn(f"{role}-{i}", node_argv(role, dataclasses.replace(spec.node, cpus=core)), core)
        for i, (role, core) in enumerate(zip(roles, cores, strict=True))
    ]
    launcher.wait_ready(nodes, spec.startup_timeout)
    asyncio.run(_all_healthy([n.address for n in nodes], spec.startup_timeout))
    pools = {"worker": "--workers", "prefill": "--prefill", "decode": "--decode"}
    router_argv = ["router", "--host", spec.host, "--port", str(spec.router_port), "--policy", spec.routing]
    router_argv += [f"--slo={slo}" for slo in spec.slos.to_args()] + metrics_argv(spec.node.metrics)
    router_argv += (
        ["--no-http"] if spec.http_port is None else ["--http-host", spec.host, "--http-port", str(spec.http_port)]
    )
    for role, flag in pools.items():
        addresses = [n.address for n, r in zip(nodes, roles, strict=True) if r == role]
        if addresses:
            router_argv += [flag, ",".join(addresses)]
    router = launcher.spawn("router", router_argv)
    launcher.wait_ready([router], spec.startup_timeout)
    asyncio.run(_all_healthy([router.address], spec.startup_timeout))
    if spec.targets_dir is not None and spec.node.metrics.enabled:
        launcher.write_targets(spec.targets_dir)


async def _all_healthy(addresses: list[str], timeout: float) -> None:
    await asyncio.gather(*(wait_healthy(a, timeout) for a in addresses))


def _announce(launcher: Launcher, spec: ClusterSpec) -> None:
    lines = [f"router: {launcher.router_address}"]
    http = launcher.children[-1].endpoints.get("http")
    if http:
        lines.append(f"openai: http://{http}/v1")
    lines.append(f"pdsim cluster up ({spec.mode}, model {spec.node.model.model}):")
    for child in launcher.children:
        cores = f"  cores {','.join(map(str, child.cores))}" if child.cores else ""
        metrics_address = child.endpoints.get("metrics")
        metrics = f"  metrics http://{metrics_address}/metrics" if metrics_address else ""
        lines.append(f"  {child.name:<10} {child.address:<22} pid {child.process.pid}{cores}{metrics}")
    if launcher.targets_file is not None:
        lines.append(f"Prometheus targets: {launcher.targets_file} (make observe scrapes them)")
    lines.append(f'try:  pdsim generate --router {launcher.router_address} --max-tokens 32 "Hello"')
    if http:
        model = Path(spec.node.model.model).name
        body = f'{{"model": "{model}", "prompt": "Hello", "max_tokens": 32}}'
        lines.append(f"      curl http://{http}/v1/completions -H 'Content-Type: application/json' -d '{body}'")
    lines.append("Ctrl-C stops every process.")
    print("\n".join(lines), flush=True)
