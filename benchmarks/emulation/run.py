"""One load run against a `pdsim up` cluster, and the totals its processes' /metrics report afterwards."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

import uvloop

from benchmarks.chaos.cluster import Cluster
from loadgen.metrics import summarize
from loadgen.runner import RunLimits, fetch_model_info, run_plan
from loadgen.spec import WorkloadSpec
from pdsim.metrics import sample_sums
from pdsim.rpc import pdsim_pb2 as pb


@dataclass(frozen=True, slots=True)
class RunFigures:
    summary: dict[str, Any]
    node_totals: dict[str, float]  # every node's /metrics summed, by sample name
    router_totals: dict[str, float]

    def median(self, metric: str) -> float:
        """`ttft`, `tpot`, ... median in seconds (emulated on an emulated cluster)."""
        return float(self.summary[f"{metric}_s"]["median"])

    @property
    def framework_overhead(self) -> float:
        """Emulated nodes: how much longer their steps took than modeled (0.05: 5%), the Python the dilation
        did not hide; nan on real nodes."""
        modeled = self.node_totals.get("pdsim_step_modeled_seconds_total", 0.0)
        busy = self.node_totals.get("pdsim_busy_seconds_total", 0.0)
        return busy / modeled - 1 if modeled > 0 else float("nan")


def measure(cluster: Cluster, workload: WorkloadSpec, limits: RunLimits) -> RunFigures:
    """Run `workload` against the cluster's router (in its emulated time, when it has one)."""

    async def run() -> dict[str, Any]:
        info = await fetch_model_info(cluster.router)
        assert isinstance(info, pb.NodeInfo)
        run_limits = limits.on_cluster(info.time_dilation)
        plan = workload.plan(info.max_context, run_limits.duration)
        open_loop = workload.arrivals.open_loop
        records = await run_plan(cluster.router, plan, open_loop, workload.arrivals.concurrency, run_limits)
        return summarize(records, plan.slos)

    summary = uvloop.run(run())
    nodes: dict[str, float] = {}
    for node in cluster.nodes.values():
        for name, value in _totals(node.metrics_url).items():
            nodes[name] = nodes.get(name, 0.0) + value
    return RunFigures(summary, nodes, _totals(cluster.router_metrics_url) if cluster.router_metrics_url else {})


def _totals(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return sample_sums(response.read().decode())
