"""The shipped Grafana dashboard: in sync with pdsim/dashboard.py, loadable by Grafana's typed model, and
covering what a user compares (every query is run against a real Prometheus in test_prometheus.py)."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.models import dashboard as grafana
from grafana_foundation_sdk.models import prometheus

from apps.dashboard import DASHBOARD_PATH, render

REQUIRED_PANELS = {
    "TTFT", "TPOT", "ITL", "Goodput", "SLO attainment", "Token throughput", "Requests running", "Requests waiting",
    "Batch size", "Busy fraction", "KV transfer bytes/s", "KV transfer latency", "KV held",
}  # fmt: skip


def test_the_committed_json_is_what_the_code_renders() -> None:
    assert DASHBOARD_PATH.read_text() == render(), "stale dashboard: run `make dashboards`"


def test_the_dashboard_loads_as_a_typed_grafana_model() -> None:
    plugins.register_default_plugins()
    model = grafana.Dashboard.from_json(json.loads(DASHBOARD_PATH.read_text()))
    assert model.uid and model.title and model.templating is not None
    variables = {v.name: v for v in model.templating.list_val or []}
    assert variables["mode"].multi and variables["mode"].include_all
    assert variables["datasource"].type_val == "datasource"

    panels = [p for p in model.panels or [] if isinstance(p, grafana.Panel)]
    assert {p.title for p in panels} >= REQUIRED_PANELS
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel.type_val == "timeseries" and panel.targets, panel.title
        for target in panel.targets:
            assert isinstance(target, prometheus.Dataquery), panel.title
            assert target.expr and "$mode" in target.expr, (panel.title, target.expr)
        assert panel.grid_pos is not None
        cells = {
            (panel.grid_pos.x + dx, panel.grid_pos.y + dy)
            for dx in range(panel.grid_pos.w)
            for dy in range(panel.grid_pos.h)
        }
        assert not cells & occupied, f"panel {panel.title!r} overlaps another"
        occupied |= cells
