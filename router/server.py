"""The router process: connect to the nodes, check they serve one model, then serve Generate."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health

from pdsim.core.requests import ModelLimits
from pdsim.core.topology import Mode
from pdsim.metrics import MetricsEndpoint, RouterMetrics, SeriesLabels
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import open_server, set_serving
from pdsim.tracing import Tracing
from router.client_errors import ErrorScrubber
from router.config import RouterConfig
from router.detokenizer import RouterTokenizer
from router.frontend import Frontend
from router.http.app import HttpFront, ServedModel
from router.modes import ColocatedMode, DisaggregatedMode
from router.nodes import NodePool
from router.policies import make_policy
from router.service import RouterNodeService, RouterService, add_router_service

log = logging.getLogger(__name__)
TOKENIZER_THREADS = 2

_TAIL_SECONDS = 0.5  # after the drain: for the streams it ended to send their error, and the servers to close


class RouterServer:
    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.address = ""
        self._pool: NodePool | None = None  # channels belong to the event loop that start() runs on
        self._server: grpc.aio.Server | None = None
        self.metrics_endpoint = MetricsEndpoint(config.metrics)
        self.tracing = Tracing("pdsim-router", config.metrics.otlp_endpoint)
        self._http: HttpFront | None = None
        self._health: health.aio.HealthServicer | None = None
        self._frontend: Frontend | None = None
        self._tokenizer_threads: ThreadPoolExecutor | None = None

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
        expected_roles = {a: "colocated" for a in config.workers}
        expected_roles |= {a: "prefill" for a in config.prefill} | {a: "decode" for a in config.decode}
        # Named as `pdsim up` names them: role and place in the cluster's node list.
        names = tuple(f"{expected_roles[a]}-{i}" for i, a in enumerate(config.nodes))
        self._pool = NodePool(config.nodes, names)
        infos = await self.pool.fetch_info(config.connect_timeout)
        fingerprints = {info.model_fingerprint for info in infos.values()}
        if len(fingerprints) != 1:
            found = ", ".join(f"{a}={i.model_fingerprint} ({i.model_name})" for a, i in infos.items())
            raise ValueError(f"nodes serve different models: {found}")
        # Emulated nodes run this many wall seconds per emulated second: the router reports in emulated seconds.
        dilations = {info.time_dilation or 1.0 for info in infos.values()}
        if len(dilations) != 1:
            found = ", ".join(f"{a}={i.time_dilation or 1.0:g}" for a, i in infos.items())
            raise ValueError(f"nodes run at different time dilations: {found}")
        dilation = dilations.pop()
        for address, role in expected_roles.items():
            if infos[address].role != role:
                raise ValueError(f"{address} is a {infos[address].role} node, expected {role}")
        info = next(iter(infos.values()))
        tokenizer_dir = Path(config.tokenizer or info.model_path)
        tokenizer = RouterTokenizer(tokenizer_dir)
        nodes = self.pool.nodes
        request_timeout = config.request_timeout * dilation  # emulated seconds on the wall clock
        # One policy per pool: a round-robin counter shared by two pools would step both in lockstep.
        mode = (
            ColocatedMode([nodes[a] for a in config.workers], make_policy(config.policy), request_timeout)
            if config.mode is Mode.COLOCATED
            else DisaggregatedMode(
                [nodes[a] for a in config.prefill],
                [nodes[a] for a in config.decode],
                make_policy(config.policy),
                make_policy(config.policy),
                request_timeout,
            )
        )
        limits = ModelLimits(info.max_context, info.vocab_size)
        server, self._health, self.address = open_server(config.host, config.port)
        labels = SeriesLabels(config.mode.value, "router", config.metrics.instance or self.address)
        metrics = RouterMetrics(self.metrics_endpoint.registry, labels, config.slos, dilation)
        # Tokenizing and chat templating, off the event loop. Two threads: the tokenizer releases the GIL, so two
        # long prompts tokenize at once, and more would only queue for the same cores.
        self._tokenizer_threads = ThreadPoolExecutor(TOKENIZER_THREADS, thread_name_prefix="tokenize")
        roles = {"colocated": config.workers, "prefill": config.prefill, "decode": config.decode}
        scrubber = ErrorScrubber.for_nodes(roles, paths=[info.model_path, str(tokenizer_dir)])
        # Both APIs serve through one Frontend: the same validation, routing, cancellation and metrics.
        frontend = self._frontend = Frontend(
            mode,
            tokenizer,
            limits,
            info.default_max_tokens,
            metrics,
            self._tokenizer_threads,
            scrubber,
            self.tracing,
            dilation,
        )
        add_router_service(RouterService(frontend), server)
        served_name = config.served_model_name or info.model_name
        pb_grpc.add_NodeServicer_to_server(RouterNodeService(info, self.pool, served_name), server)
        self.metrics_endpoint.start()
        await server.start()
        self._server = server
        if config.http_port is not None:
            served = ServedModel(served_name, tokenizer_dir, info.max_context, dilation)
            self._http = HttpFront(frontend, served, self.metrics_endpoint.render, config.api_key)
            http_address = await self._http.start(config.http_host, config.http_port)
            log.info("OpenAI-compatible API on http://%s/v1 (model %s)", http_address, served.name)
        self.pool.start_polling(config.load_poll_seconds, config.probe_timeout)
        await set_serving(self._health, True)
        log.info("router (%s, %s) serving on %s", config.mode.value, config.policy.value, self.address)
        return self.address

    async def stop(self, grace: float | None = None) -> None:
        """Drain, then stop: health turns NOT_SERVING and both APIs refuse new requests (UNAVAILABLE, 503);
        in-flight streams get `grace` seconds (default: the configured drain) to finish, and the rest end with an
        UNAVAILABLE error (an error event and [DONE] over HTTP). Their calls to the nodes are cancelled."""
        if self._health is not None:
            await set_serving(self._health, False)
        if self._frontend is not None:
            await self._frontend.drain(self.config.drain_seconds if grace is None else grace)
        if self._http is not None:  # first: its streams end, which cancels their calls to the nodes
            await self._http.stop()
        if self._server is not None:
            await self._server.stop(_TAIL_SECONDS)
        if self._pool is not None:
            await self._pool.close()
        await asyncio.to_thread(self.metrics_endpoint.stop)  # its server polls for shutdown every 0.5 s
        await asyncio.to_thread(self.tracing.shutdown)
        if self._tokenizer_threads is not None:
            self._tokenizer_threads.shutdown(wait=False, cancel_futures=True)
