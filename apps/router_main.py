"""Entry point of the router process."""

from __future__ import annotations

import argparse

import uvloop

from apps.cli import http_port_from, metrics_config_from
from pdsim.core.slo import parse_slo_args
from pdsim.core.topology import Mode
from pdsim.rpc.server import ready_line, wait_for_signal
from router.config import Policy, RouterConfig
from router.server import RouterServer


def router_config_from(args: argparse.Namespace) -> RouterConfig:
    mode = Mode.COLOCATED if args.workers else Mode.DISAGGREGATED
    return RouterConfig(
        mode=mode,
        workers=args.workers,
        prefill=args.prefill,
        decode=args.decode,
        policy=Policy(args.policy),
        host=args.host,
        port=args.port,
        http_host=args.http_host,
        http_port=http_port_from(args),
        tokenizer=args.tokenizer,
        slos=parse_slo_args(args.slo),
        metrics=metrics_config_from(args),
    )


def run_router(config: RouterConfig) -> int:
    router = RouterServer(config)

    async def serve() -> None:
        try:
            address = await router.start()
            endpoints = {"metrics": router.metrics_endpoint.address, "http": router.http_address}
            print(ready_line("router", address, **endpoints), flush=True)
            await wait_for_signal()
        finally:
            await router.stop()

    uvloop.run(serve())
    return 0
