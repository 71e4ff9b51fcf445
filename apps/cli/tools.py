"""`pdsim generate|loadgen|observe|phases|hardware|estimate|calibrate|report`: clients of a running cluster, the
phase benchmark, the emulated accelerators, their step-time calculator and calibration, and the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from apps.cli.flags import defaults_of
from router.config import DEFAULT_PORT, RouterConfig

# Where `pdsim router` and `pdsim up` listen by default.
DEFAULT_ROUTER = f"{defaults_of(RouterConfig)['host']}:{DEFAULT_PORT}"


def add_tool_commands(sub: Any) -> None:
    gen = sub.add_parser("generate", help="stream one completion from a router")
    gen.add_argument("prompt", help="text, or comma-separated token ids with --token-ids")
    gen.add_argument("--router", default=DEFAULT_ROUTER)
    gen.add_argument("--token-ids", action="store_true", help="the prompt is token ids, e.g. 1,2,3")
    gen.add_argument("--max-tokens", type=int, default=None)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--ignore-eos", action="store_true")
    gen.add_argument("--timeout", type=float, default=None, help="deadline in seconds")
    gen.set_defaults(run=_run_generate)

    from apps.loadgen_cli import add_api_args, add_workload_args
    from loadgen.runner import RunLimits
    from loadgen.spec import WorkloadSpec

    load = sub.add_parser("loadgen", help="replay a workload against a running router and report it")
    load.add_argument("--router", default=DEFAULT_ROUTER)
    load.add_argument("--output", default="results/loadgen", help="directory for requests.jsonl and summary.json")
    add_workload_args(load, WorkloadSpec(), RunLimits())
    add_api_args(load)
    load.set_defaults(run=_run_loadgen)

    from apps.observe import ObserveConfig

    observe_defaults = ObserveConfig()
    observe = sub.add_parser("observe", help="run Prometheus on loopback, scraping every pdsim cluster (make observe)")
    observe.add_argument("--host", default=observe_defaults.host)
    observe.add_argument("--port", type=int, default=observe_defaults.port)
    observe.add_argument("--workdir", default=str(observe_defaults.workdir), help="its config, data/ and log")
    observe.add_argument("--targets-dir", default=str(observe_defaults.targets), help="where clusters announce")
    observe.add_argument("--scrape-interval", default=None, help="override the shipped config's, e.g. 1s")
    observe.set_defaults(run=_run_observe)

    from benchmarks.phases.main import add_phases_args

    phases = sub.add_parser("phases", help="the prefill-vs-decode phase benchmark with a roofline (make phases)")
    add_phases_args(phases)
    phases.set_defaults(run=_run_phases)

    from apps.estimate import add_estimate_args
    from apps.hardware import add_hardware_args

    hardware = sub.add_parser("hardware", help="the emulated accelerators, their figures and sources")
    add_hardware_args(hardware)
    hardware.set_defaults(run=_run_hardware)
    estimate = sub.add_parser("estimate", help="model one step's time on an emulated accelerator")
    add_estimate_args(estimate)
    estimate.set_defaults(run=_run_estimate)

    from benchmarks.calibrate.cli import add_calibrate_args, run_calibrate_command

    calibrate = sub.add_parser("calibrate", help="fit an emulated profile to this device's measured steps")
    add_calibrate_args(calibrate)
    calibrate.set_defaults(run=run_calibrate_command)

    report = sub.add_parser("report", help="rewrite results/compare/report.md from the results on disk")
    report.add_argument("--output", default="results")
    report.set_defaults(run=_run_report)


def _run_generate(args: argparse.Namespace) -> int:
    from apps.generate import run_generate

    return run_generate(args)


def _run_loadgen(args: argparse.Namespace) -> int:
    from apps.loadgen_cli import run_loadgen

    return run_loadgen(args)


def _run_observe(args: argparse.Namespace) -> int:
    from apps.observe import ObserveConfig, run_observe

    return run_observe(ObserveConfig(Path(args.workdir), Path(args.targets_dir), host=args.host,
                                     port=args.port, scrape_interval=args.scrape_interval))  # fmt: skip


def _run_phases(args: argparse.Namespace) -> int:
    from benchmarks.phases.main import phases_config_from, run_phases

    run_phases(phases_config_from(args))
    return 0


def _run_hardware(args: argparse.Namespace) -> int:
    from apps.hardware import run_hardware

    return run_hardware(args)


def _run_estimate(args: argparse.Namespace) -> int:
    from apps.estimate import estimate_config_from, run_estimate

    return run_estimate(estimate_config_from(args))


def _run_report(args: argparse.Namespace) -> int:
    import json

    from apps.report import write_report
    from apps.sweep import first_summary

    directory = Path(args.output) / "compare"
    summary = json.loads(first_summary(directory).read_text())
    print(f"report: {write_report(directory, summary['workload']['experiment'])}")
    return 0
