"""One chaos run: start the cluster, load it while the faults happen, let it settle, stop it, and tell what
happened to every request, every fault, the KV and the processes."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.chaos.cluster import Cluster
from benchmarks.chaos.config import ChaosConfig
from benchmarks.chaos.faults import Fault, FaultResult, apply, schedule
from benchmarks.chaos.load import LoadShape, Outcome, run_load, send_one, tally

UNCLEAR_CODES = frozenset({"UNKNOWN", "INTERNAL"})  # statuses that tell a client nothing it can act on


@dataclass
class ChaosReport:
    outcomes: list[Outcome]
    faults: list[FaultResult]
    kv_held: dict[str, float]  # bytes per node once the load has settled
    still_serving: bool  # the launcher was still up, and a request after the load succeeded
    launcher_exit: int
    leaked: list[int]
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = tally(self.outcomes)

    @property
    def unclear(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "error" and (o.code in UNCLEAR_CODES or not o.detail)]

    @property
    def kv_left(self) -> float:
        return sum(v if not math.isnan(v) else math.inf for v in self.kv_held.values())

    @property
    def passed(self) -> bool:
        return (
            self.counts["lost"] == 0 and not self.unclear and self.kv_left == 0 and self.still_serving
            and self.launcher_exit == 0 and not self.leaked
        )  # fmt: skip

    def lines(self) -> list[str]:
        c = self.counts
        codes = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in c.items() if k.startswith("error:")) or "none"
        out = [
            f"requests: {c['sent']} sent, {c['ok']} succeeded, {c['error']} failed with a clear error ({codes}), "
            f"{c['cancelled']} cancelled by their client, {c['lost']} lost",
            f"unclear errors (UNKNOWN/INTERNAL or no message): {len(self.unclear)}",
            "faults:",
            *(f"  {r.line()}" for r in self.faults),
            "KV held at the end: " + ", ".join(f"{n} {v:.0f} B" for n, v in sorted(self.kv_held.items())),
            f"launcher still serving: {'yes' if self.still_serving else 'NO'}; exit code {self.launcher_exit}; "
            f"node processes left after stop: {len(self.leaked)}",
        ]
        examples = {o.code: o.detail for o in self.outcomes if o.kind == "error"}
        out += [f"  {code}: {detail}" for code, detail in sorted(examples.items())]
        lost = [o for o in self.outcomes if o.kind == "lost"][:5]
        out += [f"  lost: {o.detail}" for o in lost]
        out += [f"  unclear: {o.code} {o.detail!r}" for o in self.unclear[:5]]
        return out


def run(config: ChaosConfig, faults: list[Fault] | None = None, log: Callable[[str], None] = print) -> ChaosReport:
    """`faults` default to the seeded schedule over the cluster's nodes."""
    counts = {"workers": config.workers, "prefill": config.prefill, "decode": config.decode}
    cluster = Cluster(config.mode, counts, config.model)
    try:
        seconds = config.minutes * 60
        if faults is None:
            faults = schedule(sorted(cluster.nodes), seconds, config.fault_every, config.seed)
        log(f"cluster up ({config.mode.value}: {', '.join(sorted(cluster.nodes))}); {len(faults)} faults over "
            f"{seconds:.0f} s at {config.rate:g} req/s")  # fmt: skip
        shape = LoadShape(config.rate, seconds, config.max_tokens, config.cancel_fraction, config.request_timeout,
                          config.seed)  # fmt: skip
        outcomes, results = asyncio.run(_load_with_faults(cluster, shape, faults, config.stop_seconds, log))
        held = _settled_kv(cluster, config.settle_seconds)
        serving = cluster.serving() and _one_request_succeeds(cluster.router)
    finally:
        exit_code = cluster.stop()
    time.sleep(0.5)  # the launcher reaped its children; give /proc a moment
    return ChaosReport(outcomes, results, held, serving, exit_code, cluster.leaked())


async def _load_with_faults(
    cluster: Cluster, shape: LoadShape, faults: list[Fault], stop_seconds: float, log: Callable[[str], None]
) -> tuple[list[Outcome], list[FaultResult]]:
    start = time.monotonic()

    async def inflict() -> list[FaultResult]:
        results = []
        for fault in faults:
            await asyncio.sleep(max(0.0, start + fault.at - time.monotonic()))
            result = await asyncio.to_thread(apply, cluster, fault, stop_seconds)
            log(f"  {result.line()}")
            results.append(result)
        return results

    outcomes, results = await asyncio.gather(run_load(cluster.router, shape), inflict())
    return outcomes, results


def _settled_kv(cluster: Cluster, timeout: float) -> dict[str, float]:
    """Each node's KV held, polled until it is all zero or `timeout` passes (releases are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        held = cluster.kv_held()
        if all(v == 0 for v in held.values()) or time.monotonic() > deadline:
            return held
        time.sleep(0.5)


def _one_request_succeeds(router: str) -> bool:
    return asyncio.run(send_one(router)).kind == "ok"
