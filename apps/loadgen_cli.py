"""`pdsim loadgen`: run a workload against any running router and report it."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import uvloop

from loadgen.arrivals import ArrivalKind, Arrivals
from loadgen.metrics import summarize
from loadgen.mix import MIXES_DIR
from loadgen.records import RequestRecord
from loadgen.results import format_summary, write_results
from loadgen.runner import Api, RunLimits, fetch_model_info, run_plan
from loadgen.spec import WorkloadSpec
from loadgen.steady_state import steady_state
from loadgen.workload import LengthPolicy, Plan
from pdsim.core.slo import Slo


def add_workload_args(parser: argparse.ArgumentParser, spec: WorkloadSpec, limits: RunLimits) -> None:
    """The workload flags, their defaults read from `spec` and `limits`."""
    group = parser.add_argument_group("workload")
    shipped = ", ".join(sorted(p.stem for p in MIXES_DIR.iterdir()))
    group.add_argument("--mix", default=spec.mix, help=f"a shipped mix ({shipped}) or a TOML/YAML file")
    traces = "azure-code, azure-conv, mooncake, sharegpt, or a file (Azure CSV, Mooncake JSONL, ShareGPT, BurstGPT)"
    group.add_argument("--trace", default=spec.trace, help=f"replay a trace instead of the mix: {traces}")
    group.add_argument("--time-scale", type=float, default=spec.time_scale, help="trace times x this")
    group.add_argument(
        "--ignore-trace-times", dest="use_trace_times", action="store_false", default=spec.use_trace_times,
        help="draw times from --arrival instead",
    )  # fmt: skip
    group.add_argument("--slo-ttft", type=float, default=spec.trace_slo.ttft, help="trace requests' TTFT SLO (s)")
    group.add_argument("--slo-tpot", type=float, default=spec.trace_slo.tpot, help="trace requests' TPOT SLO (s)")
    group.add_argument("--length-policy", default=spec.length_policy.value, choices=[p.value for p in LengthPolicy])
    arrivals = spec.arrivals
    group.add_argument("--arrival", default=arrivals.kind.value, choices=[k.value for k in ArrivalKind])
    group.add_argument("--rate", type=float, default=arrivals.rate, help="requests/s (open loop)")
    group.add_argument("--burstiness", type=float, default=arrivals.burstiness, help="gamma shape: 1 is Poisson, "
                       "< 1 burstier")  # fmt: skip
    group.add_argument("--concurrency", type=int, default=arrivals.concurrency, help="requests in flight (closed loop)")
    group.add_argument("--count", type=int, default=spec.count, help="at most this many requests (default: the "
                       "duration's)")  # fmt: skip
    group.add_argument("--duration", type=float, default=limits.duration, help="send for at most this many s")
    group.add_argument("--warmup", type=int, default=limits.warmup, help="uncounted requests sent first")
    group.add_argument("--seed", type=int, default=spec.seed)
    group.add_argument("--request-timeout", type=float, default=limits.request_timeout)
    group.add_argument("--drain-timeout", type=float, default=limits.drain_timeout)


def add_api_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        default=Api.GRPC.value,
        choices=[a.value for a in Api],
        help="grpc: pdsim's Router service at --router host:port; openai: any OpenAI-compatible server's streamed "
        "/v1/completions at --router http://host:port",
    )


def workload_from(args: argparse.Namespace) -> WorkloadSpec:
    arrivals = Arrivals(ArrivalKind(args.arrival), args.rate, args.burstiness, args.concurrency)
    return WorkloadSpec(
        mix=args.mix,
        trace=args.trace,
        trace_slo=Slo(args.slo_ttft, args.slo_tpot),
        time_scale=args.time_scale,
        use_trace_times=args.use_trace_times,
        arrivals=arrivals,
        count=args.count,
        seed=args.seed,
        length_policy=LengthPolicy(args.length_policy),
    )


def limits_from(args: argparse.Namespace) -> RunLimits:
    return RunLimits(args.duration, args.warmup, args.request_timeout, args.drain_timeout)


async def measure(
    router: str,
    spec: WorkloadSpec,
    limits: RunLimits,
    output: Path,
    label: str = "",
    extra: dict[str, Any] | None = None,
    api: Api = Api.GRPC,
) -> dict[str, Any]:
    """Plan against the router's model, run, summarize, write `output`; returns the summary."""
    info = await fetch_model_info(router, api=api)
    limits = limits.on_cluster(info.time_dilation)  # an emulated cluster's run measures in its time
    plan = spec.plan(info.max_context, limits.duration)
    open_loop = spec.times_from_trace or spec.arrivals.open_loop
    records = await run_plan(router, plan, open_loop, spec.arrivals.concurrency, limits, label, api)
    summary = summarize(records, plan.slos)
    window, ended_by = _send_window(plan, records, limits, open_loop)
    summary["steady_state"] = steady_state(records, window).to_json()
    if ended_by == "count" and sends_cover(window, len(records)) < limits.duration * (1 - 1e-9):
        print(f"warning: all {len(records)} planned requests were sent within {window:.1f} s of the "
              f"{limits.duration:g} s duration; raise --count to load the whole duration", file=sys.stderr)  # fmt: skip
    summary["workload"] = {
        "description": spec.describe(),
        "model": info.model_name,
        "api": api.value,
        "max_context": info.max_context,
        "time_dilation": limits.dilation,
        "length_policy": spec.length_policy.value,
        "lengths_adjusted": sum(plan.requests[r.index].adjusted for r in records),
        "length_scale_factor": plan.scale_factor,
        "requests_skipped": plan.skipped_within(window) if open_loop else 0,
        "duration_limit_s": limits.duration,
        "send_window_s": window,
        "sending_ended_by": ended_by,
        "offered_rate": len(records) / window if window > 0 else math.nan,
        **(extra or {}),
    }
    write_results(output, records, summary)
    return summary


def sends_cover(window: float, sent: int) -> float:
    """The seconds `sent` requests sent over `window` seconds load: each its share of the gaps, the last one's
    after it (30 sends at 2 req/s, the last at 14.5 s, load 15 s)."""
    return window * sent / (sent - 1) if sent > 1 else window


def _send_window(plan: Plan, records: list[RequestRecord], limits: RunLimits, open_loop: bool) -> tuple[float, str]:
    """How long requests were being sent, and whether the duration or the request count ended that."""
    if len(records) < len(plan.requests):
        return limits.duration, "duration"
    if open_loop:  # the plan ran out: the window is the last planned send time
        return max((r.send_at or 0.0) for r in plan.requests), "count"
    return max((r.sent for r in records), default=0.0), "count"


def run_loadgen(args: argparse.Namespace) -> int:
    spec, limits = workload_from(args), limits_from(args)
    api = Api(getattr(args, "api", Api.GRPC.value))
    summary = uvloop.run(measure(args.router, spec, limits, Path(args.output), api=api))
    print(format_summary(summary, f"{spec.describe()} -> {args.output}"))
    if summary["workload"]["lengths_adjusted"] or summary["workload"]["requests_skipped"]:
        adjusted, skipped = summary["workload"]["lengths_adjusted"], summary["workload"]["requests_skipped"]
        print(
            f"length policy {spec.length_policy.value}: {adjusted} requests changed, {skipped} skipped"
            + (f" (every length x {factor:.3g})" if (factor := summary["workload"]["length_scale_factor"]) < 1 else ""),
            file=sys.stderr,
        )
    return 0
