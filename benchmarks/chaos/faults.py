"""Faults and what the cluster did about each: a seeded schedule of kills (-9), stops (SIGSTOP, then SIGCONT)
and restarts (SIGTERM: a clean exit the launcher did not ask for) of random nodes, one at a time, and for each
the seconds until the router took the node out of rotation and put it back (from the router's own log lines),
and until a killed or restarted node was up again (the launcher's). A `giant` fault instead sends the router a
text prompt of `GIANT_BYTES` over gRPC and keeps the status it got."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from dataclasses import dataclass

from benchmarks.chaos.cluster import Cluster
from benchmarks.chaos.load import send_giant

KINDS = ("kill", "stop", "restart")  # the node faults; `giant` is the prompt fault
GIANT_BYTES = 8_000_000  # 8 MB, under the router's 8 MiB message limit: refused by the prompt bound, not by gRPC
_SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "restart": signal.SIGTERM}
_RECOVERY_SECONDS = 60.0  # how long to wait for a node to be back before calling it a failed recovery


@dataclass(frozen=True, slots=True)
class Fault:
    at: float  # seconds after the load started
    kind: str  # kill | stop | restart
    node: str


@dataclass
class FaultResult:
    fault: Fault
    applied: float  # time.monotonic()
    out_of_rotation: float | None = None  # seconds after the fault
    node_ready: float | None = None  # restarted (kill, restart) or continued (stop)
    back_in_rotation: float | None = None
    status: str = ""  # a giant prompt's gRPC status and message

    def line(self) -> str:
        if self.fault.kind == "giant":
            return f"{self.fault.at:6.1f} s  giant prompt of {GIANT_BYTES} bytes: {self.status}"

        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.2f} s"

        return (
            f"{self.fault.at:6.1f} s  {self.fault.kind:<8}{self.fault.node:<12}"
            f" out of rotation {seconds(self.out_of_rotation)}, node up {seconds(self.node_ready)},"
            f" back in rotation {seconds(self.back_in_rotation)}"
        )


def schedule(nodes: list[str], seconds: float, every: float, seed: int, kinds: tuple[str, ...] = KINDS) -> list[Fault]:
    """Faults every `every` s on average (0.75-1.25x), the first after one period, none in the last one (so the
    last fault's node is back before the load ends)."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = every * rng.uniform(0.75, 1.25)
    while at < seconds - every:
        faults.append(Fault(at, rng.choice(kinds), rng.choice(nodes)))
        at += every * rng.uniform(0.75, 1.25)
    return faults


def apply(cluster: Cluster, fault: Fault, stop_seconds: float) -> FaultResult:
    """Inflict `fault` and follow the node until it is back in rotation (blocking: run it on a thread)."""
    if fault.kind == "giant":
        result = FaultResult(fault, time.monotonic())
        result.status = asyncio.run(send_giant(cluster.router, GIANT_BYTES))
        return result
    address = re.escape(cluster.nodes[fault.node].address)
    started = time.monotonic()
    cluster.signal(fault.node, _SIGNALS[fault.kind])
    result = FaultResult(fault, started)
    out = cluster.wait_line(rf"node {address} is out of rotation", started, _RECOVERY_SECONDS)
    result.out_of_rotation = None if out is None else out.at - started
    if fault.kind == "stop":
        time.sleep(max(0.0, started + stop_seconds - time.monotonic()))
        cluster.signal(fault.node, signal.SIGCONT)
        ready_at: float | None = time.monotonic()
    else:
        back = cluster.wait_line(rf"pdsim up: {re.escape(fault.node)} is back on", started, _RECOVERY_SECONDS)
        ready_at = None if back is None else back.at
    if ready_at is not None:
        result.node_ready = ready_at - started
        # The rotation line that counts is the first after the node went out (it may come before "back on" is
        # read when the restart is quick).
        since = started if out is None else out.at
        rejoined = cluster.wait_line(rf"node {address} is back in rotation", since, _RECOVERY_SECONDS)
        result.back_in_rotation = None if rejoined is None else rejoined.at - started
    return result
