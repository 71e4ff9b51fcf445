"""The router process: connect to the nodes, check they serve one model, then serve Generate."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc

from pdsim.core.requests import ModelLimits
from pdsim.core.topology import Mode
from pdsim.metrics import MetricsEndpoint, RouterMetrics, SeriesLabels
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import open_server, set_serving
from router.config import RouterConfig
from router.detokenizer import RouterTokenizer
from router.frontend import Frontend
from router.http.app import HttpFront, ServedModel
from router.modes import ColocatedMode, DisaggregatedMode
from router.nodes import NodePool
from router.policies import make_policy
from router.service import RouterNodeService, RouterService

log = logging.getLogger(__name__)


class RouterServer:
    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.address = ""
        self._pool: NodePool | None = None  # channels belong to the event loop that start() runs on
        self._server: grpc.aio.Server | None = None
        self.metrics_endpoint = MetricsEndpoint(config.metrics)
        self._http: HttpFront | None = None

    @property
    def http_address(self) -> str:
        """host:port of the OpenAI-compatible API; empty when it is off."""
        return "" if self._http is None else self._http.address

    @property
    def endpoints(self) -> dict[str, str]:
        """For the ready line: where /metrics and the HTTP API are served ("" when off)."""
        return {"metrics": self.metrics_endpoint.address, "http": self.http_address}

    @property
    def pool(self) -> NodePool:
        assert self._pool is not None, "start() first"
        return self._pool

    async def start(self) -> str:
        config = self.config
        self._pool = NodePool(config.nodes)
        infos = await self.pool.fetch_info(config.connect_timeout)
        fingerprints = {info.model_fingerprint for info in infos.values()}
        if len(fingerprints) != 1:
            found = ", ".join(f"{a}={i.model_fingerprint} ({i.model_name})" for a, i in infos.items())
            raise ValueError(f"nodes serve different models: {found}")
        expected_roles = {a: "colocated" for a in config.workers}
        expected_roles |= {a: "prefill" for a in config.prefill} | {a: "decode" for a in config.decode}
        for address, role in expected_roles.items():
            if infos[address].role != role:
                raise ValueError(f"{address} is a {infos[address].role} node, expected {role}")
        info = next(iter(infos.values()))
        tokenizer_dir = Path(config.tokenizer or info.model_path)
        tokenizer = RouterTokenizer(tokenizer_dir)
        nodes = self.pool.nodes
        # One policy per pool: a round-robin counter shared by two pools would step both in lockstep.
        mode = (
            ColocatedMode([nodes[a] for a in config.workers], make_policy(config.policy), config.request_timeout)
            if config.mode is Mode.COLOCATED
            else DisaggregatedMode(
                [nodes[a] for a in config.prefill],
                [nodes[a] for a in config.decode],
                make_policy(config.policy),
                make_policy(config.policy),
                config.request_timeout,
            )
        )
        limits = ModelLimits(info.max_context, info.vocab_size)
        server, health, self.address = open_server(config.host, config.port)
        labels = SeriesLabels(config.mode.value, "router", config.metrics.instance or self.address)
        metrics = RouterMetrics(self.metrics_endpoint.registry, labels, config.slos)
        # Both APIs serve through one Frontend: the same validation, routing, cancellation and metrics.
        frontend = Frontend(mode, tokenizer, limits, info.default_max_tokens, metrics)
        pb_grpc.add_RouterServicer_to_server(RouterService(frontend), server)
        pb_grpc.add_NodeServicer_to_server(RouterNodeService(info, self.pool), server)
        self.metrics_endpoint.start()
        await server.start()
        self._server = server
        if config.http_port is not None:
            served = ServedModel(info.model_name, tokenizer_dir, info.max_context)
            self._http = HttpFront(frontend, served, self.metrics_endpoint.render)
            http_address = await self._http.start(config.http_host, config.http_port)
            log.info("OpenAI-compatible API on http://%s/v1 (model %s)", http_address, info.model_name)
        self.pool.start_polling(config.load_poll_seconds, config.probe_timeout)
        await set_serving(health, True)
        log.info("router (%s, %s) serving on %s", config.mode.value, config.policy.value, self.address)
        return self.address

    async def stop(self, grace: float = 1.0) -> None:
        if self._http is not None:  # first: its streams end, which cancels their calls to the nodes
            await self._http.stop()
        if self._server is not None:
            await self._server.stop(grace)
        if self._pool is not None:
            await self._pool.close()
        await asyncio.to_thread(self.metrics_endpoint.stop)  # its server polls for shutdown every 0.5 s
