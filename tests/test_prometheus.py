"""Live metrics in a real Prometheus: both deployments under a short load, scraped through the launcher's
service discovery files; every dashboard query answers, and the router's histograms agree with the client."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import os
import shutil
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from apps.dashboard import panel_queries
from apps.launcher import ClusterSpec, Launcher, started_cluster
from apps.loadgen_cli import measure
from apps.observe import ObserveConfig, start_prometheus, stop_prometheus
from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.runner import RunLimits
from loadgen.spec import WorkloadSpec
from pdsim.core.topology import Mode
from pdsim.metrics import LATENCY_BUCKETS
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig
from router.config import Policy

MODES = ("colocated", "disaggregated")
WORKLOAD = WorkloadSpec(mix="chat", arrivals=Arrivals(ArrivalKind.POISSON, rate=4.0), seed=5)
LIMITS = RunLimits(duration=6.0, warmup=0, request_timeout=60, drain_timeout=60)

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None and os.environ.get("PDSIM_REQUIRE_PROMETHEUS") != "1",
    reason="prometheus is not installed (deploy/prometheus/install.sh installs it; .ci/run requires it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def _number(url: str, expr: str) -> float:
    result = _query(url, expr)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _wait_for_targets(url: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = _query(url, 'up{job="pdsim"}')
        if len(up) == count and all(r["value"][1] == "1" for r in up):
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not see {count} healthy pdsim targets: {up}")


def _bucket(seconds: float) -> int:
    return bisect.bisect_left(LATENCY_BUCKETS, seconds)


def test_every_panel_answers_and_router_histograms_agree_with_the_client(tmp_path: Path) -> None:
    targets = tmp_path / "prometheus" / "targets"
    node = NodeConfig(model=ModelSpec("tiny"))
    specs = [
        ClusterSpec(Mode(mode), workers=2, prefill=1, decode=1, node=node, router_port=0, http_port=None,
                    routing=Policy.ROUND_ROBIN, slos=WORKLOAD.slo_table(), targets_dir=targets)
        for mode in MODES
    ]  # fmt: skip
    observe = ObserveConfig(tmp_path / "prometheus", targets, port=_free_port(), scrape_interval="1s")
    with contextlib.ExitStack() as stack:
        launchers: list[Launcher] = [stack.enter_context(started_cluster(spec)) for spec in specs]
        prometheus = start_prometheus(observe)
        stack.callback(stop_prometheus, prometheus)
        assert len(list(targets.glob("*.json"))) == len(MODES)
        _wait_for_targets(observe.url, sum(len(launcher.children) for launcher in launchers))

        async def load() -> list[dict[str, Any]]:
            return await asyncio.gather(
                *(measure(launcher.router_address, WORKLOAD, LIMITS, tmp_path / mode) for mode, launcher
                  in zip(MODES, launchers, strict=True))
            )  # fmt: skip

        summaries = dict(zip(MODES, asyncio.run(load()), strict=True))
        time.sleep(3.0)  # a few scrapes after the last completion

        for mode in MODES:
            for title, expr in panel_queries():
                concrete = expr.replace("$mode", mode).replace("$__rate_interval", "1m")
                values = [float(r["value"][1]) for r in _query(observe.url, concrete)]
                if mode == "colocated" and title.startswith("KV transfer"):
                    assert not values, f"panel {title!r}: a colocated cluster moves no KV, got {values}"
                elif "rate(" in expr:  # the load just ended: every rate and quantile over the last minute is > 0
                    assert any(math.isfinite(v) and v > 0 for v in values), f"{mode} {title!r}: {concrete} {values}"
                else:  # a gauge: present, and 0 is a fine value now that the load is over
                    assert values and all(math.isfinite(v) for v in values), f"{mode} {title!r}: {concrete}"

        for mode, summary in summaries.items():
            assert summary["completed"] >= 10 and summary["failed"] == 0, (mode, summary["errors"])
            router = f'mode="{mode}", role="router"'
            count = _number(observe.url, f"sum(pdsim_time_to_first_token_seconds_count{{{router}}})")
            assert count == summary["completed"], mode
            p50 = _number(
                observe.url,
                f"histogram_quantile(0.5, sum by (le) (pdsim_time_to_first_token_seconds_bucket{{{router}}}))",
            )
            client_p50 = summary["ttft_s"]["median"]
            assert abs(_bucket(p50) - _bucket(client_p50)) <= 1, (mode, p50, client_p50)
        for launcher in launchers:
            launcher.stop_all()
        assert not list(targets.glob("*.json")), "a stopped cluster's targets file was left behind"
