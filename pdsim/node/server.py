"""A node's gRPC server: the engine, the Node and health services, and the role's own servicer.

`start()` / `stop()` let tests run several nodes in one process; `pdsim.rpc.serve` wraps them in a process.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health

from pdsim.core.topology import Role
from pdsim.engine.assemble import BuiltEngine
from pdsim.engine.engine import StepStats
from pdsim.engine.schedulers import LoadSnapshot
from pdsim.metrics import MetricsEndpoint, NodeMetrics, SeriesLabels
from pdsim.node.config import NodeConfig
from pdsim.node.service import InFlight, NodeService
from pdsim.node.step_log import StepLog
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import open_server, set_serving
from pdsim.tracing import Tracing

log = logging.getLogger(__name__)

_ENGINE_STOP_SECONDS = 1.0  # a step in progress finishes first; the engine thread is a daemon past this


class NodeServer:
    role: Role

    def __init__(self, config: NodeConfig) -> None:
        self.config = config.wall_clock()
        self.address = ""
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._built: BuiltEngine | None = None
        self.in_flight = InFlight()
        self.metrics_endpoint = MetricsEndpoint(config.metrics)
        self._metrics: NodeMetrics | None = None
        self._step_log: StepLog | None = None
        self.tracing = Tracing(f"pdsim-{self.role.value}", config.metrics.otlp_endpoint)

    @property
    def metrics(self) -> NodeMetrics:
        assert self._metrics is not None, "start() first"
        return self._metrics

    @property
    def built(self) -> BuiltEngine:
        assert self._built is not None, "start() first"
        return self._built

    async def start(self) -> str:
        self._built = await asyncio.to_thread(self._build)
        server, self._health, self.address = open_server(self.config.host, self.config.port)
        node = NodeService(
            self.role.value,
            self.built.info,
            self.config.default_max_tokens,
            self.load,
            lambda: self.built.engine.steps,
            self.config.dilation,
        )
        pb_grpc.add_NodeServicer_to_server(node, server)
        self._add_services(server)
        self._start_metrics()
        self.built.engine.start()
        await server.start()
        self._server = server
        await self._on_started()
        await set_serving(self._health, True)
        log.info("%s node serving on %s (model %s)", self.role.value, self.address, self.built.info.name)
        return self.address

    def _build(self) -> BuiltEngine:
        """The engine on the configured device; torch is imported only for a real one."""
        config = self.config
        if config.model.emulated_profile is not None:
            from pdsim.engine.emulated.build import build_emulated_engine

            return build_emulated_engine(self.role, config.model, config.engine, config.emulation)
        from pdsim.engine.build import build_engine

        return build_engine(self.role, config.model, config.engine)

    async def stop(self, grace: float | None = None) -> None:
        """Drain, then stop: health turns NOT_SERVING and new RPCs are refused (UNAVAILABLE, which the router and
        prefill nodes take as "try another node"); in-flight ones get `grace` seconds (default: the configured
        drain) to finish, and whatever is left is cancelled, which its caller sees as a terminal status."""
        if self._health is not None:
            await set_serving(self._health, False)
        # The server first: requests in their grace period may still use the role's channels and tasks.
        if self._server is not None:
            await self._server.stop(self.config.drain_seconds if grace is None else grace)
        await self._on_stopping()
        if self._built is not None:
            await asyncio.to_thread(self._built.engine.stop, _ENGINE_STOP_SECONDS)
        await asyncio.to_thread(self.metrics_endpoint.stop)  # its server polls for shutdown every 0.5 s
        if self._step_log is not None:
            self._step_log.close()
        await asyncio.to_thread(self.tracing.shutdown)

    @property
    def endpoints(self) -> dict[str, str]:
        """For the ready line: where /metrics is served ("" when off)."""
        return {"metrics": self.metrics_endpoint.address}

    def load(self) -> LoadSnapshot:
        return self.built.engine.load()

    def _start_metrics(self) -> None:
        mode = self.role.mode.value
        labels = SeriesLabels(mode, self.role.value, self.config.metrics.instance or self.address)
        directions = (self.role.kv_direction,) if self.role.kv_direction else ()
        registry = self.metrics_endpoint.registry
        self._metrics = NodeMetrics(registry, labels, self.load, directions, self.config.dilation)
        self.built.engine.add_observer(self._observe_step)
        if self.config.record_steps is not None:
            self._step_log = StepLog(self.config.record_steps, self.role.value, self.address)
            self.built.engine.add_observer(self._step_log.write)
        self.metrics_endpoint.start()

    def _observe_step(self, stats: StepStats) -> None:
        self.metrics.step(stats.phase.value, stats)

    # ---------------------------------------------------------------- role hooks
    def _add_services(self, server: grpc.aio.Server) -> None:
        raise NotImplementedError

    async def _on_started(self) -> None:
        """Start background tasks once serving."""

    async def _on_stopping(self) -> None:
        """Stop background tasks and close outgoing channels."""
