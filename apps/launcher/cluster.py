"""Start a `ClusterSpec`'s nodes, then its router once every node is healthy; report it; keep it serving
(`apps.launcher.supervise` restarts a process that dies); stop it all.

Each node is its own process on its own cores (CPU) or device. Ctrl-C or SIGTERM stops everything within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from apps.launcher.processes import Launcher, interrupt
from apps.launcher.spec import ClusterSpec
from apps.launcher.supervise import Supervisor
from pdsim.core.topology import Mode, Role
from pdsim.models.presets import ensure_preset, is_preset
from pdsim.rpc.server import wait_healthy
from router.config import RouterConfig

log = logging.getLogger(__name__)

_SUPERVISE_SECONDS = 0.1  # how often the launcher looks for exited processes (a restart waits its backoff anyway)


def assign_cores(count: int, available: list[int]) -> list[tuple[int, ...]]:
    """One core per node while cores last; beyond that nodes share, which the launcher warns about."""
    return [(available[i % len(available)],) for i in range(count)]


@contextlib.contextmanager
def started_cluster(spec: ClusterSpec, launcher: Launcher | None = None) -> Iterator[Launcher]:
    """A healthy cluster for the `with` block (the router's address is `launcher.router_address`);
    every process is stopped on the way out, whatever happened."""
    launcher = launcher or Launcher(spec.mode)
    try:
        real = [spec.node_for(role).model for role in set(spec.roles())]
        if is_preset(spec.node.model.model) and any(model.emulated_profile is None for model in real):
            ensure_preset(spec.node.model.model)  # once, before the nodes race to create it
        _start(launcher, spec)
        yield launcher
    finally:
        launcher.stop_all()


def run_cluster(spec: ClusterSpec) -> int:
    # SIGTERM behaves like Ctrl-C: whatever the launcher is doing (creating a model, waiting for health), it
    # unwinds through `started_cluster`, which stops every child.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with started_cluster(spec) as launcher:
            _announce(launcher, spec)
            supervisor = Supervisor(launcher, spec)
            while (gone := supervisor.step()) is None:
                time.sleep(_SUPERVISE_SECONDS)
            print(f"pdsim up: {gone}; stopping the cluster", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"pdsim up: {error}", file=sys.stderr)
        return 1
    finally:
        print("pdsim up: every process stopped", file=sys.stderr)


def router_config(spec: ClusterSpec, nodes: dict[Role, list[str]]) -> RouterConfig:
    """The router of `spec` in front of `nodes` (addresses by role)."""
    return RouterConfig(
        mode=spec.mode,
        workers=tuple(nodes.get(Role.COLOCATED, ())),
        prefill=tuple(nodes.get(Role.PREFILL, ())),
        decode=tuple(nodes.get(Role.DECODE, ())),
        policy=spec.routing,
        host=spec.host,
        port=spec.router_port,
        http_host=spec.host,
        http_port=spec.http_port,
        api_key=spec.api_key,
        served_model_name=spec.served_model_name,
        slos=spec.slos,
        metrics=spec.node.metrics,
        drain_seconds=spec.node.drain_seconds,
    )


def _emulation_text(spec: ClusterSpec) -> str:
    """`, emulated h100-sxm, dilation 10`: what a user must know to read an emulated cluster's figures."""
    devices = sorted({spec.node_for(role).model.device for role in set(spec.roles())})
    if not any(device.startswith("emulated:") for device in devices):
        return ""
    emulation = spec.node.emulation
    tp = f", tp {emulation.tp}" if emulation.tp > 1 else ""
    link = f", link {emulation.link}" if spec.mode is Mode.DISAGGREGATED else ""
    k = emulation.dilation
    return f", on {' + '.join(devices)}{tp}{link}, dilation {k:g}: every figure in emulated seconds, wall = {k:g} x"


def _start(launcher: Launcher, spec: ClusterSpec) -> None:
    roles = spec.roles()
    on_cpu = [spec.node_for(role).model.device == "cpu" for role in roles]  # an emulated node takes no core
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = iter(assign_cores(sum(on_cpu), available) if available else [])
    cores = [next(pinned, None) if cpu else None for cpu in on_cpu]
    if available and sum(on_cpu) > len(available):
        log.warning("%d nodes share %d cores: they are not separate devices", sum(on_cpu), len(available))
    configs = [
        dataclasses.replace(spec.node_for(role), host=spec.host, port=0, cpus=core)
        for role, core in zip(roles, cores, strict=True)
    ]
    nodes = [
        launcher.spawn(f"{role.value}-{i}", role.value, config, config.cpus)
        for i, (role, config) in enumerate(zip(roles, configs, strict=True))
    ]
    launcher.wait_ready(nodes, spec.startup_timeout)
    asyncio.run(_all_healthy([n.address for n in nodes], spec.startup_timeout))
    by_role: dict[Role, list[str]] = {}
    for child, role in zip(nodes, roles, strict=True):
        by_role.setdefault(role, []).append(child.address)
    router = launcher.spawn("router", "router", router_config(spec, by_role))
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
    lines.append(f"pdsim cluster up ({spec.mode.value}, model {spec.node.model.model}{_emulation_text(spec)}):")
    for child in launcher.children:
        cores = f"  cores {','.join(map(str, child.cores))}" if child.cores else ""
        metrics_address = child.endpoints.get("metrics")
        metrics = f"  metrics http://{metrics_address}/metrics" if metrics_address else ""
        lines.append(f"  {child.name:<13} {child.address:<22} pid {child.process.pid}{cores}{metrics}")
    if launcher.targets_file is not None:
        lines.append(f"Prometheus targets: {launcher.targets_file} (make observe scrapes them)")
    lines.append(f'try:  pdsim generate --router {launcher.router_address} --max-tokens 32 "Hello"')
    if http:
        model = spec.served_model_name or Path(spec.node.model.model).name
        body = f'{{"model": "{model}", "prompt": "Hello", "max_tokens": 32}}'
        auth = " -H 'Authorization: Bearer <api-key>'" if spec.api_key else ""  # the key itself is not printed
        lines.append(f"      curl http://{http}/v1/completions -H 'Content-Type: application/json'{auth} -d '{body}'")
    lines.append("Ctrl-C stops every process.")
    print("\n".join(lines), flush=True)
