"""`pdsim up`, `pdsim experiment`, `pdsim compare`: commands that start whole clusters. Defaults come from
`ClusterSpec` and `ExperimentConfig`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.arms import KNOWN_ARMS
from apps.cli.flags import (
    add_emulation_args,
    add_http_args,
    add_node_args,
    add_routing_arg,
    add_slo_arg,
    defaults_of,
    emulation_config_from,
    enum_choices,
    node_config_from,
    slos_from,
)
from apps.launcher.spec import ClusterSpec, Restart, default_targets_dir
from pdsim.core.topology import Mode
from pdsim.models.flags import add_model_args, model_spec_from

if TYPE_CHECKING:
    from apps.experiment import ExperimentConfig
    from loadgen.runner import RunLimits
    from pdsim.engine.emulated.config import EmulationConfig
    from pdsim.models.spec import ModelSpec


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
    up.add_argument(
        "--restart", default=d["restart"], help=f"restart a process that dies, on its ports (default: "
        f"{d['restart'].value}); never: the cluster ends once every process of a role is down",
        **enum_choices(Restart),
    )  # fmt: skip
    up.add_argument(
        "--restart-backoff", type=float, default=d["restart_backoff"], metavar="SECONDS",
        help="before a first restart; doubles per restart in a row, up to --restart-backoff-max",
    )  # fmt: skip
    up.add_argument("--restart-backoff-max", type=float, default=d["restart_backoff_max"], metavar="SECONDS")
    add_node_args(up, d["node"], one_process=False)
    _add_role_device_args(up)
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


def _add_role_device_args(parser: argparse.ArgumentParser) -> None:
    for role in ("prefill", "decode"):
        parser.add_argument(
            f"--{role}-device",
            default=None,
            help=f"the {role} pool's device, e.g. emulated:a100-80gb (default --device)",
        )


def cluster_spec_from(args: argparse.Namespace) -> ClusterSpec:
    d = defaults_of(ClusterSpec)
    targets = Path(args.targets_dir) if args.targets_dir else default_targets_dir()
    node = node_config_from(args, one_process=False)
    return ClusterSpec(
        mode=args.mode, workers=args.workers, prefill=args.prefill, decode=args.decode, node=node, host=args.host,
        router_port=args.port, http_port=args.http_port, routing=args.routing, startup_timeout=args.startup_timeout,
        slos=slos_from(args, d["slos"]), targets_dir=targets if node.metrics.enabled else None,
        restart=args.restart, restart_backoff=args.restart_backoff, restart_backoff_max=args.restart_backoff_max,
        api_key=args.api_key, served_model_name=args.served_model_name, prefill_device=args.prefill_device,
        decode_device=args.decode_device,
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
    parser.add_argument(
        "--step-token-budget", type=int, default=defaults.step_token_budget,
        help="colocated chunked: tokens per step (decodes first, then a prompt chunk)",
    )  # fmt: skip
    add_routing_arg(parser, defaults.routing)
    parser.add_argument(
        "--rates", default=None, help=f"the sweep, req/s (default {_listed(defaults.rates)}; with --repeats > 1, "
        f"{_listed(defaults.repeat_rates)}); the main --rate is always run",
    )  # fmt: skip
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        help="runs per rate, seeds --seed, --seed + 1, ...: figures become medians with 95%% intervals",
    )
    search = defaults.capacity
    parser.add_argument(
        "--find-capacity",
        action="store_true",
        default=defaults.find_capacity,
        help="after the sweep, bisect for the highest rate each arm holds at >= 90%% SLO attainment",
    )
    parser.add_argument("--max-probes", type=int, default=search.max_probes, help="capacity search: runs per arm")
    parser.add_argument(
        "--probe-duration",
        type=float,
        default=search.probe_duration,
        help="capacity search: seconds each probe sends for",
    )
    parser.add_argument(
        "--capacity-tolerance",
        type=float,
        default=search.tolerance,
        help="capacity search: stop when the bracket is within this fraction of its lower end",
    )
    parser.add_argument(
        "--arms", default=",".join(defaults.arms), help=f"what compare runs, some of: {', '.join(KNOWN_ARMS)}"
    )
    parser.add_argument("--output", default=str(defaults.output))
    add_emulation_args(parser, defaults.emulation)
    _add_role_device_args(parser)
    add_workload_args(parser, defaults.workload_at(defaults.rate), defaults.limits)


def _listed(rates: tuple[float, ...]) -> str:
    return ",".join(f"{r:g}" for r in rates)


def _rates_from(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise ValueError(f"--rates takes numbers like 1,2,4; got {text!r}") from None


def experiment_config_from(args: argparse.Namespace) -> ExperimentConfig:
    from apps.capacity import CapacitySearch
    from apps.experiment import ExperimentConfig
    from apps.loadgen_cli import limits_from, workload_from

    defaults = ExperimentConfig()
    given = _rates_from(args.rates) if args.rates is not None else None  # a sweep asked for is run, repeats or not
    model = model_spec_from(args)
    emulation = emulation_config_from(args)
    rate, limits = args.rate, limits_from(args)
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    if model.emulated_profile is not None:
        rate, given, limits, arms = _emulated_defaults(args, defaults, model, emulation, rate, given, limits, arms)
    return ExperimentConfig(
        model=model,
        workers=args.workers,
        prefill=args.prefill,
        decode=args.decode,
        max_batch=args.max_batch,
        step_token_budget=args.step_token_budget,
        routing=args.routing,
        workload=workload_from(args),
        limits=limits,
        rate=rate,
        rates=given or defaults.rates,
        arms=arms,
        output=Path(args.output),
        repeats=args.repeats,
        repeat_rates=given or defaults.repeat_rates,
        find_capacity=args.find_capacity,
        capacity=CapacitySearch(args.capacity_tolerance, args.max_probes, args.probe_duration),
        emulation=emulation,
        prefill_device=args.prefill_device,
        decode_device=args.decode_device,
    )


def _emulated_defaults(
    args: argparse.Namespace,
    defaults: ExperimentConfig,
    model: ModelSpec,
    emulation: EmulationConfig,
    rate: float,
    given: tuple[float, ...] | None,
    limits: RunLimits,
    arms: tuple[str, ...],
) -> tuple[float, tuple[float, ...] | None, RunLimits, tuple[str, ...]]:
    """On emulated devices, what the user left at the CPU's defaults is chosen for the device: the sweep straddles
    the cluster's modeled capacity (a CPU's 0.5-2 req/s would leave an emulated GPU idle), each run sends for
    `EMULATED_DURATION` emulated seconds, and the arms are chunked colocated against disaggregated, so that a
    sweep on emulated GPUs takes about ten minutes at the default dilation."""
    from apps.emulated_rates import EMULATED_ARMS, EMULATED_DURATION, emulated_rates

    chosen = []
    if given is None and rate == defaults.rate:
        devices = max(args.workers, args.prefill + args.decode)
        rate, given = emulated_rates(model, emulation, args.mix, args.max_batch, devices)
        chosen.append(f"rates {_listed(given)} req/s (main {rate:g}), fractions of the modeled capacity")
    if limits.duration == defaults.limits.duration:
        limits = dataclasses.replace(limits, duration=EMULATED_DURATION)
        chosen.append(f"{EMULATED_DURATION:g} emulated s per run")
    if arms == defaults.arms:
        arms = EMULATED_ARMS
        chosen.append(f"arms {', '.join(arms)}")
    if chosen:
        print(f"emulated {args.device}: {'; '.join(chosen)} (--rates, --duration and --arms choose others)", flush=True)
    return rate, given, limits, arms


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
