"""`pdsim prefill|decode|colocated|router`: run one server process.

Each takes `--config FILE` (a whole config as JSON, as `--print-config` prints it and the launcher writes it): the
file's values become the flags' defaults, so only flags given on the command line override it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from apps.cli.flags import (
    add_drain_arg,
    add_http_args,
    add_metrics_args,
    add_node_args,
    add_routing_arg,
    add_slo_arg,
    address_list,
    defaults_of,
    metrics_config_from,
    node_config_from,
    slos_from,
)
from pdsim.core.topology import Mode, Role
from pdsim.node.config import NodeConfig
from router.config import RouterConfig

NODE_HELP = {
    Role.PREFILL: "run a prefill node",
    Role.DECODE: "run a decode node",
    Role.COLOCATED: "run a colocated worker (prefill and decode)",
}
ROUTER = "router"


def config_class(command: str) -> type[NodeConfig] | type[RouterConfig]:
    return RouterConfig if command == ROUTER else NodeConfig


def add_server_commands(sub: Any, loaded: object | None = None) -> None:
    """`loaded`: the config read from --config; its values are the defaults of the command it belongs to."""
    for role, text in NODE_HELP.items():
        aliases = ["worker"] if role is Role.COLOCATED else []  # the colocated worker's old name
        node = sub.add_parser(role.value, aliases=aliases, help=text)
        _add_config_args(node)
        add_node_args(node, loaded if isinstance(loaded, NodeConfig) else NodeConfig())
        node.set_defaults(run=_run_node, role=role)

    defaults = defaults_of(loaded if isinstance(loaded, RouterConfig) else RouterConfig)
    router = sub.add_parser(ROUTER, help="run the router in front of running nodes")
    _add_config_args(router)
    router.add_argument("--host", default=defaults["host"])
    router.add_argument("--port", type=int, default=defaults["port"], help="0 picks a free port")
    for pool, text in (("workers", "colocated workers"), ("prefill", "prefill nodes"), ("decode", "decode nodes")):
        router.add_argument(f"--{pool}", type=address_list, default=defaults[pool], help=f"{text} HOST:PORT,...")
    add_routing_arg(router, defaults["policy"])
    router.add_argument("--tokenizer", default=defaults["tokenizer"], help="directory with tokenizer.json "
                        "(default: the model's)")  # fmt: skip
    router.add_argument(
        "--request-timeout", type=float, default=defaults["request_timeout"],
        help="seconds a request may take when its client sets no deadline (default: %(default)s)",
    )  # fmt: skip
    add_slo_arg(router)
    add_http_args(
        router, defaults["http_port"], defaults["http_host"], defaults["api_key"], defaults["served_model_name"]
    )
    add_metrics_args(router, defaults["metrics"])
    add_drain_arg(router, defaults["drain_seconds"])
    router.set_defaults(run=_run_router, role=None, slos_default=defaults["slos"], router_defaults=defaults)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config file")
    group.add_argument("--config", default=None, metavar="FILE", help="a config as JSON; flags given override it")
    group.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")


def router_config_from(args: argparse.Namespace) -> RouterConfig:
    defaults = args.router_defaults
    return RouterConfig(
        mode=Mode.COLOCATED if args.workers else Mode.DISAGGREGATED,
        workers=args.workers,
        prefill=args.prefill,
        decode=args.decode,
        policy=args.routing,
        host=args.host,
        port=args.port,
        http_host=args.http_host,
        http_port=args.http_port,
        tokenizer=args.tokenizer,
        served_model_name=args.served_model_name,
        api_key=args.api_key,
        connect_timeout=defaults["connect_timeout"],
        load_poll_seconds=defaults["load_poll_seconds"],
        probe_timeout=defaults["probe_timeout"],
        request_timeout=args.request_timeout,
        slos=slos_from(args, args.slos_default),
        metrics=metrics_config_from(args),
        drain_seconds=args.drain,
    )


def _print_config(config: object) -> int:
    from apps.config_io import config_to_json

    sys.stdout.write(config_to_json(config))
    return 0


def _run_node(args: argparse.Namespace) -> int:
    config = node_config_from(args)
    if args.print_config:
        return _print_config(config)
    from apps.servers import run_node

    return run_node(args.role, config)


def _run_router(args: argparse.Namespace) -> int:
    config = router_config_from(args)
    if args.print_config:
        return _print_config(config)
    from apps.servers import run_router

    return run_router(config)
