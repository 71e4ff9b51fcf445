"""`pdsim`: the command line. Each subcommand parses its flags into a frozen config and hands it on.

Defaults come from the config dataclasses, so the CLI and the code cannot disagree.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.kv.codec import DEFAULT_CHUNK_BYTES
from pdsim.metrics import MetricsConfig
from pdsim.models.presets import PRESETS
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig

if TYPE_CHECKING:
    from apps.experiment import ExperimentConfig

_ENGINE = EngineConfig()
_MODEL = ModelSpec()
_NODE = NodeConfig()
_METRICS = MetricsConfig()
DEFAULT_HTTP_PORT = 8000


def _address_list(text: str) -> tuple[str, ...]:
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"address {address!r} is not HOST:PORT")
    return addresses


def _cpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cpus takes core ids like 0,1; got {text!r}") from None


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    presets = ", ".join(sorted(PRESETS))
    group.add_argument("--model", default=_MODEL.model, help=f"a preset ({presets}) or a local checkpoint path")
    group.add_argument("--device", default=_MODEL.device, help="cpu, cuda[:N] or mps")
    group.add_argument("--dtype", default=_MODEL.dtype, choices=["float32", "float16", "bfloat16"])
    group.add_argument("--max-context", type=int, default=None, help="cap the model's context (saves KV memory)")


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--max-batch", type=int, default=_ENGINE.max_batch, help="KV slots = largest batch")
    group.add_argument("--prefill-token-budget", type=int, default=_ENGINE.prefill_token_budget)
    group.add_argument(
        "--policy",
        default=_ENGINE.policy.value,
        choices=[p.value for p in SchedulePolicy],
        help="colocated only",
    )
    group.add_argument("--max-waiting", type=int, default=_ENGINE.max_waiting)
    group.add_argument("--kv-lease", type=float, default=_ENGINE.kv_lease_seconds, help="decode: seconds")
    group.add_argument("--staging-tokens", type=int, default=None, help="decode: KV tokens awaiting a Decode")
    group.add_argument("--default-max-tokens", type=int, default=_NODE.default_max_tokens)
    group.add_argument("--kv-chunk-bytes", type=int, default=DEFAULT_CHUNK_BYTES, help="prefill: KV chunk size")


def add_metrics_args(parser: argparse.ArgumentParser, one_process: bool = True) -> None:
    """`one_process=False` (pdsim up): every process gets a free port and its address as its instance label."""
    group = parser.add_argument_group("metrics")
    group.add_argument("--metrics-host", default=_METRICS.host, help="where /metrics listens")
    group.add_argument("--no-metrics", action="store_true", help="serve no /metrics")
    if one_process:
        group.add_argument("--metrics-port", type=int, default=_METRICS.port, help="0 picks a free port")
        group.add_argument("--instance", default=_METRICS.instance, help="the instance label (default: the address)")


def metrics_config_from(args: argparse.Namespace) -> MetricsConfig:
    return MetricsConfig(
        enabled=not args.no_metrics,
        host=args.metrics_host,
        port=getattr(args, "metrics_port", _METRICS.port),
        instance=getattr(args, "instance", _METRICS.instance),
    )


def add_http_args(parser: argparse.ArgumentParser, host: bool = True) -> None:
    """`host=False` (pdsim up): the HTTP API listens on the cluster's --host."""
    group = parser.add_argument_group("OpenAI-compatible HTTP API")
    if host:
        group.add_argument("--http-host", default="127.0.0.1", help="where the HTTP API listens")
    group.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, help="0 picks a free port")
    group.add_argument("--no-http", action="store_true", help="serve no HTTP API")


def http_port_from(args: argparse.Namespace) -> int | None:
    """The HTTP API's port from `add_http_args`' flags; None when it is off."""
    return None if args.no_http else int(args.http_port)


def node_config_from(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(
        host=args.host,
        port=args.port,
        cpus=args.cpus,
        model=ModelSpec(args.model, args.device, args.dtype, args.max_context),
        engine=EngineConfig(
            max_batch=args.max_batch,
            prefill_token_budget=args.prefill_token_budget,
            policy=SchedulePolicy(args.policy),
            max_waiting=args.max_waiting,
            kv_lease_seconds=args.kv_lease,
            staging_tokens=args.staging_tokens,
        ),
        default_max_tokens=args.default_max_tokens,
        kv_chunk_bytes=args.kv_chunk_bytes,
        metrics=metrics_config_from(args),
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdsim", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    for role, text in (
        ("prefill", "run a prefill node"),
        ("decode", "run a decode node"),
        ("worker", "run a colocated worker (prefill and decode)"),
    ):
        node = sub.add_parser(role, help=text)
        node.add_argument("--host", default=_NODE.host)
        node.add_argument("--port", type=int, default=_NODE.port, help="0 picks a free port")
        node.add_argument("--cpus", type=_cpu_list, default=None, help="cores for this node, e.g. 0 or 2,3")
        add_model_args(node)
        add_engine_args(node)
        add_metrics_args(node)

    router = sub.add_parser("router", help="run the router in front of running nodes")
    router.add_argument("--host", default="127.0.0.1")
    router.add_argument("--port", type=int, default=50051)
    router.add_argument("--workers", type=_address_list, default=(), help="colocated workers HOST:PORT,...")
    router.add_argument("--prefill", type=_address_list, default=(), help="prefill nodes HOST:PORT,...")
    router.add_argument("--decode", type=_address_list, default=(), help="decode nodes HOST:PORT,...")
    router.add_argument("--policy", default="least-loaded", choices=["round-robin", "least-loaded"])
    router.add_argument("--tokenizer", default=None, help="directory with tokenizer.json (default: the model's)")
    router.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="[CLASS:]ttft=S,tpot=S[,e2el=S]",
        help="the SLO the router's goodput counts against; repeat per request class (no CLASS: the default)",
    )
    add_http_args(router)
    add_metrics_args(router)

    up = sub.add_parser("up", help="start a whole cluster on this machine")
    up.add_argument("--mode", required=True, choices=["colocated", "disaggregated"])
    up.add_argument("--workers", type=int, default=2, help="colocated workers")
    up.add_argument("--prefill", type=int, default=1, help="prefill nodes")
    up.add_argument("--decode", type=int, default=1, help="decode nodes")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=50051, help="the router's port")
    up.add_argument("--routing", default="least-loaded", choices=["round-robin", "least-loaded"])
    up.add_argument("--startup-timeout", type=float, default=180.0)
    up.add_argument("--slo", action="append", default=[], metavar="[CLASS:]ttft=S,tpot=S", help="see `router`")
    up.add_argument("--targets-dir", default=None, help="where to write Prometheus service discovery files")
    add_model_args(up)
    add_engine_args(up)
    add_http_args(up, host=False)
    add_metrics_args(up, one_process=False)

    gen = sub.add_parser("generate", help="stream one completion from a router")
    gen.add_argument("prompt", help="text, or comma-separated token ids with --token-ids")
    gen.add_argument("--router", default="127.0.0.1:50051")
    gen.add_argument("--token-ids", action="store_true", help="the prompt is token ids, e.g. 1,2,3")
    gen.add_argument("--max-tokens", type=int, default=None)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--ignore-eos", action="store_true")
    gen.add_argument("--timeout", type=float, default=None, help="deadline in seconds")

    from apps.loadgen_cli import add_api_args, add_workload_args

    load = sub.add_parser("loadgen", help="replay a workload against a running router and report it")
    load.add_argument("--router", default="127.0.0.1:50051")
    load.add_argument("--output", default="results/loadgen", help="directory for requests.jsonl and summary.json")
    add_workload_args(load)
    add_api_args(load)

    for name, text in (
        ("experiment", "one deployment on the default workload (make colocated / make disaggregated)"),
        ("compare", "both deployments over a rate sweep, with a report and plots (make compare)"),
    ):
        exp = sub.add_parser(name, help=text)
        if name == "experiment":
            exp.add_argument("--mode", required=True, choices=["colocated", "disaggregated"])
        _add_experiment_args(exp)

    from apps.observe import ObserveConfig

    observe_defaults = ObserveConfig()
    observe = sub.add_parser("observe", help="run Prometheus on loopback, scraping every pdsim cluster (make observe)")
    observe.add_argument("--host", default=observe_defaults.host)
    observe.add_argument("--port", type=int, default=observe_defaults.port)
    observe.add_argument("--workdir", default=str(observe_defaults.workdir), help="its config, data/ and log")
    observe.add_argument("--targets-dir", default=str(observe_defaults.targets), help="where clusters announce")
    observe.add_argument("--scrape-interval", default=None, help="override the shipped config's, e.g. 1s")

    from benchmarks.phases.main import add_phases_args

    phases = sub.add_parser("phases", help="the prefill-vs-decode phase benchmark with a roofline (make phases)")
    add_phases_args(phases)

    report = sub.add_parser("report", help="rewrite results/compare/report.md from the results on disk")
    report.add_argument("--output", default="results")
    return parser


def _add_experiment_args(parser: argparse.ArgumentParser) -> None:
    from apps.experiment import ExperimentConfig
    from apps.loadgen_cli import add_workload_args

    defaults = ExperimentConfig()
    parser.add_argument("--model", default=defaults.model.model)
    parser.add_argument("--device", default=defaults.model.device)
    parser.add_argument("--dtype", default=defaults.model.dtype, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--workers", type=int, default=defaults.workers, help="colocated workers")
    parser.add_argument("--prefill", type=int, default=defaults.prefill, help="prefill nodes")
    parser.add_argument("--decode", type=int, default=defaults.decode, help="decode nodes")
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    parser.add_argument("--routing", default=defaults.routing, choices=["round-robin", "least-loaded"])
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in defaults.rates), help="the sweep, req/s")
    parser.add_argument("--output", default=str(defaults.output))
    add_workload_args(parser)
    parser.set_defaults(
        rate=defaults.rate,
        duration=defaults.limits.duration,
        warmup=defaults.limits.warmup,
        drain_timeout=defaults.limits.drain_timeout,
    )


def experiment_config_from(args: argparse.Namespace) -> ExperimentConfig:
    from apps.experiment import ExperimentConfig
    from apps.loadgen_cli import limits_from, workload_from

    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        raise ValueError(f"--rates takes numbers like 1,2,4; got {args.rates!r}") from None
    return ExperimentConfig(
        model=ModelSpec(args.model, args.device, args.dtype),
        workers=args.workers,
        prefill=args.prefill,
        decode=args.decode,
        max_batch=args.max_batch,
        routing=args.routing,
        workload=workload_from(args),
        limits=limits_from(args),
        rate=args.rate,
        rates=rates,
        output=Path(args.output),
    )


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    try:
        return _dispatch(args)
    except (ValueError, OSError, TimeoutError) as error:  # OSError: ConnectionError, a port in use
        print(f"pdsim {args.command}: {error}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("prefill", "decode", "worker"):
        from apps.node_main import run_node

        return run_node(args.command, node_config_from(args))
    if args.command == "router":
        from apps.router_main import router_config_from, run_router

        return run_router(router_config_from(args))
    if args.command == "up":
        from apps.launcher import ClusterSpec, run_cluster

        return run_cluster(ClusterSpec.from_args(args))
    if args.command == "generate":
        from apps.generate import run_generate

        return run_generate(args)
    if args.command == "loadgen":
        from apps.loadgen_cli import run_loadgen

        return run_loadgen(args)
    if args.command == "experiment":
        from apps.experiment import run_single

        return run_single(experiment_config_from(args), args.mode)
    if args.command == "compare":
        from apps.experiment import run_compare

        print(f"report: {run_compare(experiment_config_from(args))}")
        return 0
    if args.command == "observe":
        from apps.observe import ObserveConfig, run_observe

        return run_observe(ObserveConfig(Path(args.workdir), Path(args.targets_dir), host=args.host,
                                         port=args.port, scrape_interval=args.scrape_interval))  # fmt: skip

    if args.command == "phases":
        from benchmarks.phases.main import phases_config_from, run_phases

        run_phases(phases_config_from(args))
        return 0
    if args.command == "report":
        import json

        from apps.report import write_report

        directory = Path(args.output) / "compare"
        summary = json.loads(next(directory.glob("*/rate-*/summary.json")).read_text())
        print(f"report: {write_report(directory, summary['workload']['experiment'])}")
        return 0
    raise AssertionError(args.command)
