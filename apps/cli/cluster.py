"""`pdsim up`, `pdsim experiment`, `pdsim compare`: commands that start whole clusters. Defaults come from
`ClusterSpec` and `ExperimentConfig`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.arms import KNOWN_ARMS
from apps.cli.flags import (
    add_http_args,
    add_node_args,
    add_routing_arg,
    add_slo_arg,
    defaults_of,
    enum_choices,
    node_config_from,
    slos_from,
)
from apps.launcher.spec import ClusterSpec, default_targets_dir
from pdsim.core.topology import Mode
from pdsim.models.flags import add_model_args, model_spec_from

if TYPE_CHECKING:
    from apps.experiment import ExperimentConfig


def _add_mode_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", required=True, **enum_choices(Mode))


def add_cluster_commands(sub: Any) -> None:
    d = defaults_of(ClusterSpec)
    up = sub.add_parser("up", help="start a whole cluster on this machine")
    _add_mode_arg(up)
    up.add_argument("--workers", type=int, default=d["workers"], help="colocated workers")
    up.add_argument("--prefill", type=int, default=d["prefill"], help="prefill nodes")
    up.add_argument("--decode", type=int, default=d["decode"], help="decode nodes")
    up.add_argument("--host", default=d["host"], help="where every process listens")
    up.add_argument("--port", type=int, default=d["router_port"], help="the router's port")
    add_routing_arg(up, d["routing"])
    up.add_argument("--startup-timeout", type=float, default=d["startup_timeout"])
    add_slo_arg(up)
    up.add_argument("--targets-dir", default=None, help="where to write Prometheus service discovery files")
    add_node_args(up, d["node"], one_process=False)
    add_http_args(up, d["http_port"], api_key=d["api_key"], served_model_name=d["served_model_name"])
    up.set_defaults(run=_run_up)

    for name, text in (
        ("experiment", "one deployment on the default workload (make colocated / make disaggregated)"),
        ("compare", "both deployments over a rate sweep, with a report and plots (make compare)"),
    ):
        exp = sub.add_parser(name, help=text)
        if name == "experiment":
            exp.add_argument("--arm", required=True, choices=list(KNOWN_ARMS), help="the deployment to run")
        _add_experiment_args(exp)
        exp.set_defaults(run=_run_experiment if name == "experiment" else _run_compare)


def cluster_spec_from(args: argparse.Namespace) -> ClusterSpec:
    d = defaults_of(ClusterSpec)
    targets = Path(args.targets_dir) if args.targets_dir else default_targets_dir()
    node = node_config_from(args, one_process=False)
    return ClusterSpec(
        mode=args.mode, workers=args.workers, prefill=args.prefill, decode=args.decode, node=node, host=args.host,
        router_port=args.port, http_port=args.http_port, routing=args.routing, startup_timeout=args.startup_timeout,
        slos=slos_from(args, d["slos"]), targets_dir=targets if node.metrics.enabled else None,
        api_key=args.api_key, served_model_name=args.served_model_name,
    )  # fmt: skip


def _add_experiment_args(parser: argparse.ArgumentParser) -> None:
    from apps.experiment import ExperimentConfig
    from apps.loadgen_cli import add_workload_args

    defaults = ExperimentConfig()
    add_model_args(parser, defaults.model)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="colocated workers")
    parser.add_argument("--prefill", type=int, default=defaults.prefill, help="prefill nodes")
    parser.add_argument("--decode", type=int, default=defaults.decode, help="decode nodes")
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    add_routing_arg(parser, defaults.routing)
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in defaults.rates), help="the sweep, req/s")
    parser.add_argument(
        "--arms", default=",".join(defaults.arms), help=f"what compare runs, some of: {', '.join(KNOWN_ARMS)}"
    )
    parser.add_argument("--output", default=str(defaults.output))
    add_workload_args(parser, defaults.workload_at(defaults.rate), defaults.limits)


def experiment_config_from(args: argparse.Namespace) -> ExperimentConfig:
    from apps.experiment import ExperimentConfig
    from apps.loadgen_cli import limits_from, workload_from

    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        raise ValueError(f"--rates takes numbers like 1,2,4; got {args.rates!r}") from None
    return ExperimentConfig(
        model=model_spec_from(args),
        workers=args.workers,
        prefill=args.prefill,
        decode=args.decode,
        max_batch=args.max_batch,
        routing=args.routing,
        workload=workload_from(args),
        limits=limits_from(args),
        rate=args.rate,
        rates=rates,
        arms=tuple(a.strip() for a in args.arms.split(",") if a.strip()),
        output=Path(args.output),
    )


def _run_up(args: argparse.Namespace) -> int:
    from apps.launcher import run_cluster

    return run_cluster(cluster_spec_from(args))


def _run_experiment(args: argparse.Namespace) -> int:
    from apps.experiment import run_single

    return run_single(experiment_config_from(args), args.arm)


def _run_compare(args: argparse.Namespace) -> int:
    from apps.experiment import run_compare

    print(f"report: {run_compare(experiment_config_from(args))}")
    return 0
