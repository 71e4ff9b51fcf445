"""Flag groups shared by several commands. Every default is read from a config object the caller passes (a
dataclass's defaults, or a config file's values), never typed here."""

from __future__ import annotations

import argparse
import dataclasses
from enum import Enum
from typing import Any

from pdsim.core.emulation.links import link_ids
from pdsim.core.slo import SloTable, parse_slo_args
from pdsim.engine.config import EngineConfig, SchedulePolicy
from pdsim.engine.emulated.config import EmulationConfig
from pdsim.metrics import MetricsConfig
from pdsim.models.flags import add_model_args, model_spec_from
from pdsim.node.config import NodeConfig
from router.config import Policy

SLO_METAVAR = "[CLASS:]ttft=S,tpot=S[,e2el=S]"


def defaults_of(config: Any) -> dict[str, Any]:
    """Field values of a dataclass instance, or the field defaults of a dataclass (fields without one left out)."""
    if not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    found: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return found


def address_list(text: str) -> tuple[str, ...]:
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"address {address!r} is not HOST:PORT")
    return addresses


def cpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--cpus takes core ids like 0,1; got {text!r}") from None


def enum_choices(kind: type[Enum]) -> dict[str, Any]:
    """`add_argument` keywords for a flag whose value is a member of `kind`, spelt by its value."""
    values = [m.value for m in kind]

    def member(text: str) -> Enum:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(values)}") from None

    return {"type": member, "choices": list(kind), "metavar": "{" + ",".join(values) + "}"}


def add_routing_arg(parser: argparse.ArgumentParser, default: Policy) -> None:
    parser.add_argument(
        "--routing", default=default, help=f"how the router picks a node (default: {default.value})",
        **enum_choices(Policy),
    )  # fmt: skip


def add_slo_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slo", action="append", default=None, metavar=SLO_METAVAR,
        help="the SLO the router's goodput counts against; repeat per request class (no CLASS: the default)",
    )  # fmt: skip


def add_drain_arg(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--drain", type=float, default=default, metavar="SECONDS",
        help="on SIGTERM, how long in-flight streams may finish (new requests are refused) before they are failed",
    )  # fmt: skip


def add_engine_args(parser: argparse.ArgumentParser, defaults: EngineConfig, node: NodeConfig) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--max-batch", type=int, default=defaults.max_batch, help="KV slots = largest batch")
    group.add_argument(
        "--prefill-token-budget", type=int, default=defaults.prefill_token_budget,
        help="prompt tokens one prefill step may compute (prefill nodes; prefill-first and decode-first)",
    )  # fmt: skip
    group.add_argument(
        "--step-token-budget", type=int, default=defaults.step_token_budget,
        help="chunked: tokens one step computes, its decodes first, the rest a chunk of a waiting prompt",
    )  # fmt: skip
    group.add_argument(
        "--schedule", default=defaults.policy, help=f"colocated: how prefills and decodes share steps (default: "
        f"{defaults.policy.value})", **enum_choices(SchedulePolicy),
    )  # fmt: skip
    group.add_argument("--max-waiting", type=int, default=defaults.max_waiting)
    group.add_argument("--kv-lease", type=float, default=defaults.kv_lease_seconds, help="decode: seconds")
    group.add_argument(
        "--kv-push-stall", type=float, default=defaults.kv_push_stall_seconds,
        help="decode: seconds a KV push may send nothing before it is dropped",
    )  # fmt: skip
    group.add_argument(
        "--staging-tokens", type=int, default=defaults.staging_tokens, help="decode: KV tokens awaiting a Decode"
    )
    group.add_argument("--default-max-tokens", type=int, default=node.default_max_tokens)
    group.add_argument("--kv-chunk-bytes", type=int, default=node.kv_chunk_bytes, help="prefill: KV chunk size")
    group.add_argument(
        "--kv-push-timeout", type=float, default=node.kv_push_timeout,
        help="prefill: seconds one KV push may take before the next decode node is tried",
    )  # fmt: skip


def add_metrics_args(parser: argparse.ArgumentParser, defaults: MetricsConfig, one_process: bool = True) -> None:
    """`one_process=False` (pdsim up): every process gets a free port and its address as its instance label."""
    group = parser.add_argument_group("metrics")
    group.add_argument("--metrics-host", default=defaults.host, help="where /metrics listens")
    group.add_argument(
        "--no-metrics", dest="metrics_enabled", action="store_false", default=defaults.enabled, help="serve no /metrics"
    )
    group.add_argument(
        "--otlp-endpoint", default=defaults.otlp_endpoint, metavar="HOST:PORT",
        help="send OpenTelemetry traces (a span per request stage) to this OTLP/gRPC collector; default: none",
    )  # fmt: skip
    if one_process:
        group.add_argument("--metrics-port", type=int, default=defaults.port, help="0 picks a free port")
        group.add_argument("--instance", default=defaults.instance, help="the instance label (default: the address)")


def metrics_config_from(args: argparse.Namespace) -> MetricsConfig:
    defaults = MetricsConfig()
    return MetricsConfig(
        enabled=args.metrics_enabled,
        host=args.metrics_host,
        port=getattr(args, "metrics_port", defaults.port),
        instance=getattr(args, "instance", defaults.instance),
        otlp_endpoint=args.otlp_endpoint,
    )


def add_http_args(
    parser: argparse.ArgumentParser,
    port: int | None,
    host: str | None = None,
    api_key: str | None = None,
    served_model_name: str | None = None,
) -> None:
    """`host=None` (pdsim up): the HTTP API listens on the cluster's --host."""
    group = parser.add_argument_group("OpenAI-compatible HTTP API")
    if host is not None:
        group.add_argument(
            "--http-host", default=host,
            help="where the HTTP API listens (e.g. 0.0.0.0 for every interface: then set --api-key)",
        )  # fmt: skip
    group.add_argument("--http-port", type=int, default=port, help="0 picks a free port")
    group.add_argument("--no-http", dest="http_port", action="store_const", const=None, help="serve no HTTP API")
    group.add_argument(
        "--api-key", default=api_key, metavar="KEY",
        help="/v1/* answers 401 without 'Authorization: Bearer KEY' (/metrics and /health stay open)",
    )  # fmt: skip
    group.add_argument(
        "--served-model-name", default=served_model_name, metavar="NAME",
        help="the model's name in the API (default: the checkpoint directory's name)",
    )  # fmt: skip


def add_node_args(parser: argparse.ArgumentParser, defaults: NodeConfig, one_process: bool = True) -> None:
    """A node's flags; `one_process=False` (pdsim up): no address, cores or metrics port (the launcher's)."""
    if one_process:
        parser.add_argument("--host", default=defaults.host)
        parser.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
        parser.add_argument("--cpus", type=cpu_list, default=defaults.cpus, help="cores for this node, e.g. 0 or 2,3")
    add_drain_arg(parser, defaults.drain_seconds)
    add_model_args(parser, defaults.model)
    add_engine_args(parser, defaults.engine, defaults)
    add_metrics_args(parser, defaults.metrics, one_process)
    add_emulation_args(parser, defaults.emulation)
    parser.add_argument(
        "--record-steps", default=defaults.record_steps, metavar="DIR",
        help="append every step's shape and seconds to DIR/<role>-<port>.jsonl (for pdsim calibrate --from-steps)",
    )  # fmt: skip


def add_emulation_args(parser: argparse.ArgumentParser, defaults: EmulationConfig) -> None:
    group = parser.add_argument_group("emulated devices (--device emulated:<profile>; `pdsim hardware` lists them)")
    group.add_argument("--tp", type=int, default=defaults.tp, help="tensor-parallel GPUs per node")
    group.add_argument(
        "--link", default=defaults.link, choices=link_ids(), help="what pushed KV crosses, prefill to decode"
    )
    group.add_argument(
        "--dilation", type=float, default=defaults.dilation,
        help="wall seconds per emulated second: Python's own overhead shrinks by this much next to modeled steps",
    )  # fmt: skip


def emulation_config_from(args: argparse.Namespace) -> EmulationConfig:
    return EmulationConfig(tp=args.tp, link=args.link, dilation=args.dilation)


def node_config_from(args: argparse.Namespace, one_process: bool = True) -> NodeConfig:
    """From `add_node_args`' flags; `one_process=False`: address and cores are left to the launcher."""
    defaults = NodeConfig()
    return NodeConfig(
        host=args.host if one_process else defaults.host,
        port=args.port if one_process else defaults.port,
        cpus=args.cpus if one_process else defaults.cpus,
        model=model_spec_from(args),
        engine=EngineConfig(
            max_batch=args.max_batch,
            prefill_token_budget=args.prefill_token_budget,
            step_token_budget=args.step_token_budget,
            policy=args.schedule,
            max_waiting=args.max_waiting,
            kv_lease_seconds=args.kv_lease,
            kv_push_stall_seconds=args.kv_push_stall,
            staging_tokens=args.staging_tokens,
        ),
        default_max_tokens=args.default_max_tokens,
        kv_chunk_bytes=args.kv_chunk_bytes,
        kv_push_timeout=args.kv_push_timeout,
        metrics=metrics_config_from(args),
        drain_seconds=args.drain,
        emulation=emulation_config_from(args),
        record_steps=args.record_steps,
    )


def slos_from(args: argparse.Namespace, default: SloTable) -> SloTable:
    """The SLO table from repeated --slo flags; `default` when none was given."""
    return default if args.slo is None else parse_slo_args(args.slo)
