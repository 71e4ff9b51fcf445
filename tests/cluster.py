"""Start whole clusters inside the test process: every node and the router on one event loop."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apps.servers import SERVERS
from colocated_node.service import ColocatedNodeServer
from decode_node.service import DecodeNodeServer
from pdsim.core.slo import SloTable
from pdsim.core.topology import Mode, Role
from pdsim.engine.config import EngineConfig
from pdsim.models.spec import ModelSpec
from pdsim.node.config import NodeConfig
from pdsim.node.server import NodeServer
from pdsim.tracing import Tracing
from prefill_node.service import PrefillNodeServer
from router.config import Policy, RouterConfig
from router.server import RouterServer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


@dataclass
class Cluster:
    router: RouterServer
    workers: list[ColocatedNodeServer] = field(default_factory=list)
    prefill: list[PrefillNodeServer] = field(default_factory=list)
    decode: list[DecodeNodeServer] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.router.address

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API's base URL (the cluster must have been started with `http=True`)."""
        assert self.router.http_address, "start the cluster with http=True"
        return f"http://{self.router.http_address}/v1"

    @property
    def nodes(self) -> list[NodeServer]:
        return [*self.workers, *self.prefill, *self.decode]


def node_config(model: str = "tiny", **engine: Any) -> NodeConfig:
    return NodeConfig(model=ModelSpec(model=model), engine=dataclasses.replace(EngineConfig(), **engine))


@contextlib.asynccontextmanager
async def cluster(
    mode: Mode,
    workers: int = 2,
    prefill: int = 1,
    decode: int = 1,
    config: NodeConfig | None = None,
    decode_configs: Sequence[NodeConfig] = (),
    policy: Policy = Policy.ROUND_ROBIN,
    slos: SloTable | None = None,
    http: bool = False,
    span_exporter: SpanExporter | None = None,
    **router_options: Any,
) -> AsyncIterator[Cluster]:
    """`router_options`: more `RouterConfig` fields (e.g. `api_key`); `span_exporter`: every server traces into it."""
    config = config or node_config()
    nodes: list[NodeServer] = []
    router: RouterServer | None = None
    try:
        if mode is Mode.COLOCATED:
            nodes += [SERVERS[Role.COLOCATED](config) for _ in range(workers)]
        else:
            nodes += [SERVERS[Role.PREFILL](config) for _ in range(prefill)]
            nodes += [SERVERS[Role.DECODE](c) for c in (decode_configs or [config] * decode)]
        for node in nodes:
            if span_exporter is not None:
                node.tracing = Tracing(f"pdsim-{node.role.value}", exporter=span_exporter)
            await node.start()
        addresses = tuple(n.address for n in nodes)
        by_role = {role: tuple(n.address for n in nodes if n.role is role) for role in Role}
        router = RouterServer(
            RouterConfig(
                mode=mode,
                workers=by_role[Role.COLOCATED],
                prefill=by_role[Role.PREFILL],
                decode=by_role[Role.DECODE],
                policy=policy,
                slos=slos or SloTable(),
                port=0,
                http_port=0 if http else None,
                **router_options,
            )
        )
        assert set(addresses) == set(router.config.nodes)
        if span_exporter is not None:
            router.tracing = Tracing("pdsim-router", exporter=span_exporter)
        await router.start()
        yield Cluster(
            router,
            workers=[n for n in nodes if isinstance(n, ColocatedNodeServer)],
            prefill=[n for n in nodes if isinstance(n, PrefillNodeServer)],
            decode=[n for n in nodes if isinstance(n, DecodeNodeServer)],
        )
    finally:
        if router is not None:
            await router.stop(0)
        for node in nodes:
            await node.stop(0)
