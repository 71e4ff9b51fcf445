"""The Grafana dashboard, as code: every panel and its PromQL, written out to deploy/grafana/dashboards/.

One `mode` variable (colocated, disaggregated or both) and every query split by `mode`, so two runs show
side by side on one screen. The panels' queries are the contract the Prometheus test checks: each must return
data after a short load on each mode.

    python -m apps.dashboard   # rewrites deploy/grafana/dashboards/pdsim.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_PATH = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards" / "pdsim.json"
DASHBOARD_UID = "pdsim-modes"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MODE = 'mode=~"$mode"'
WINDOW = "$__rate_interval"


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _selector(where: str) -> str:
    return f"{MODE}{', ' + where if where else ''}"


def _legend(by: str) -> str:
    """`mode, phase` -> `{{mode}} {{phase}}`."""
    return " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))


def _quantiles(metric: str, by: str = "mode", where: str = "") -> tuple[Query, ...]:
    selector, legend = _selector(where), _legend(by)
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}[{WINDOW}])))",
            f"{legend} p{round(q * 100)}",
        )
        for q in (0.5, 0.99)
    )


# Prometheus takes rates over wall time; an emulated cluster runs `pdsim_time_dilation` wall seconds per emulated
# second (1 on real devices), so multiplying by it gives rates per emulated second, like every other figure.
PER_EMULATED_SECOND = "* on (mode) group_left max by (mode) (pdsim_time_dilation)"


def _rate(metric: str, by: str, where: str = "", legend: str = "") -> Query:
    """Per emulated second (per second on real devices); `by` must include `mode`."""
    query = f"sum by ({by}) (rate({metric}{{{_selector(where)}}}[{WINDOW}])) {PER_EMULATED_SECOND}"
    return Query(query, legend or _legend(by))


ROWS = (
    Row(
        "What the client sees (router)",
        (
            Panel("TTFT", "Time to first token, p50 and p99, observed at the router", "s",
                  _quantiles("pdsim_time_to_first_token_seconds")),
            Panel("TPOT", "Time per output token after the first, p50 and p99", "s",
                  _quantiles("pdsim_request_time_per_output_token_seconds")),
            Panel("ITL", "Gaps between streamed tokens, p50 and p99", "s",
                  _quantiles("pdsim_inter_token_latency_seconds")),
            Panel("E2E latency", "Request latency from receipt to last token, p50 and p99", "s",
                  _quantiles("pdsim_e2e_request_latency_seconds")),
            Panel(
                "Where TTFT goes",
                "Median time per request stage (pdsim.core.timeline; the stages before the first token add up to "
                "the router's TTFT; kv_push, kv_handoff, decode_queue and first_decode_step come after it)",
                "s",
                (
                    Query(
                        "histogram_quantile(0.5, sum by (le, mode, stage) "
                        f"(rate(pdsim_request_stage_seconds_bucket{{{MODE}}}[{WINDOW}])))",
                        "{{mode}} {{stage}}",
                    ),
                ),
            ),
            Panel(
                "Goodput",
                "Requests per second that met their SLO, beside all completed requests per second",
                "reqps",
                (
                    _rate("pdsim_requests_slo_met_total", "mode", legend="{{mode}} goodput"),
                    _rate("pdsim_requests_total", "mode", 'outcome="ok"', legend="{{mode}} completed"),
                ),
            ),
            Panel(
                "SLO attainment",
                "Requests that met their SLO / requests received (failures count as missed), per SLO class",
                "percentunit",
                (
                    Query(
                        f"sum by (mode, slo_class) (rate(pdsim_requests_slo_met_total{{{MODE}}}[{WINDOW}]))"
                        f" / sum by (mode, slo_class) (rate(pdsim_requests_total{{{MODE}}}[{WINDOW}]))",
                        "{{mode}} {{slo_class}}",
                    ),
                ),
            ),
            Panel(
                "Token throughput",
                "Tokens streamed to clients and prompt tokens accepted, per second",
                "short",
                (
                    _rate("pdsim_generation_tokens_total", "mode", 'role="router"', "{{mode}} output tok/s"),
                    _rate("pdsim_prompt_tokens_total", "mode", 'role="router"', "{{mode}} prompt tok/s"),
                ),
            ),
            Panel("Requests by outcome", "Requests per second by outcome (ok or the failure's status)", "reqps",
                  (_rate("pdsim_requests_total", "mode, outcome"),)),
        ),
    ),
    Row(
        "Workers",
        (
            Panel("Requests running", "Requests past prefill holding KV, per worker", "short",
                  (Query(f'pdsim_num_requests_running{{{MODE}, role!="router"}}', "{{mode}} {{role}} {{instance}}"),)),
            Panel("Requests waiting", "Requests queued, per worker", "short",
                  (Query(f"pdsim_num_requests_waiting{{{MODE}}}", "{{mode}} {{role}} {{instance}}"),)),
            Panel(
                "Batch size",
                "Mean requests per engine step, per worker and phase",
                "short",
                (
                    Query(
                        f"sum by (mode, role, instance, phase) (rate(pdsim_batch_size_sum{{{MODE}}}[{WINDOW}]))"
                        f" / sum by (mode, role, instance, phase) (rate(pdsim_batch_size_count{{{MODE}}}[{WINDOW}]))",
                        "{{mode}} {{role}} {{instance}} {{phase}}",
                    ),
                ),
            ),
            Panel("Busy fraction", "Share of time the engine spends in prefill and in decode steps, per worker",
                  "percentunit", (_rate("pdsim_busy_seconds_total", "mode, role, instance, phase"),)),
            Panel("Step time", "Engine step time by phase, p50 and p99", "s",
                  _quantiles("pdsim_step_seconds", "mode, phase")),
            Panel("Step tokens", "Tokens per second computed by engine steps, by kind: prompt or running decode",
                  "short", (_rate("pdsim_step_tokens_total", "mode, role, instance, kind"),)),
            Panel("Queue time", "Time a request waits on a worker before its first step there, p50 and p99", "s",
                  _quantiles("pdsim_request_queue_time_seconds", "mode, role")),
        ),
    ),
    Row(
        "KV cache",
        (
            Panel("KV transfer bytes/s", "KV cache bytes sent by prefill nodes and received by decode nodes",
                  "Bps", (_rate("pdsim_kv_transfer_bytes_total", "mode, role, instance, direction"),)),
            Panel("KV transfer latency", "Time to move one request's KV cache, p50 and p99", "s",
                  _quantiles("pdsim_kv_transfer_seconds", "mode, direction")),
            Panel(
                "KV held",
                "KV cache bytes held per node that decodes, beside its capacity",
                "bytes",
                (
                    Query(f'pdsim_kv_held_bytes{{{MODE}, role=~"decode|colocated"}}', "{{mode}} {{instance}} held"),
                    Query(
                        f'pdsim_kv_capacity_bytes{{{MODE}, role=~"decode|colocated"}}',
                        "{{mode}} {{instance}} capacity",
                    ),
                ),
            ),
        ),
    ),
)  # fmt: skip


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query on the dashboard."""
    return [(p.title, q.expr) for row in ROWS for p in row.panels for q in p.queries]


def _timeseries(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, "min": 0}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }


def build_dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        panels.append(
            {"id": len(panels) + 1, "type": "row", "title": row.title, "collapsed": False, "panels": [],
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
        )  # fmt: skip
        y += 1
        for i, panel in enumerate(row.panels):
            panels.append(_timeseries(panel, len(panels) + 1, 12 * (i % 2), y + 8 * (i // 2)))
        y += 8 * ((len(row.panels) + 1) // 2)
    mode_query = "label_values(pdsim_requests_total, mode)"
    variables = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {"text": "pdsim-prometheus", "value": "pdsim-prometheus"}},
        {"name": "mode", "label": "mode", "type": "query", "datasource": DATASOURCE,
         "query": {"query": mode_query, "refId": "mode"}, "definition": mode_query,
         "multi": True, "includeAll": True, "refresh": 2, "sort": 1,
         "current": {"text": ["All"], "value": ["$__all"]}},
    ]  # fmt: skip
    return {
        "uid": DASHBOARD_UID,
        "title": "pdsim: colocated vs disaggregated",
        "description": "TTFT, TPOT, goodput and the workers behind them, one line per deployment mode",
        "tags": ["pdsim"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build_dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    DASHBOARD_PATH.parent.mkdir(parents=True, exist_ok=True)
    DASHBOARD_PATH.write_text(render())
    print(f"wrote {DASHBOARD_PATH}")
