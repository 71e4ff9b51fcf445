"""Run a plan against a router: warm up (not counted), send on schedule or in a closed loop, drain, record.

The requests go through pdsim's gRPC API (`Api.GRPC`) or any OpenAI-compatible HTTP API (`Api.OPENAI`), so one
experiment runs against either.

Every run is bounded: at most the plan's requests, none sent after `duration`, and in-flight requests are
given the drain time after the last send (by default their own deadline: no request can outlive it) before they
are cancelled and recorded as timeouts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import aiohttp

from loadgen.client import LoadClient
from loadgen.clock import RunClock
from loadgen.openai_client import OpenAiClient, ServedModel, base_url, fetch_served_model
from loadgen.progress import Progress
from loadgen.records import RequestRecord
from loadgen.workload import Plan, PlannedRequest
from pdsim.core.emulation.dilation import check_dilation
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel


@dataclass(frozen=True, slots=True)
class RunLimits:
    duration: float = 60.0  # no request is sent after this many seconds
    warmup: int = 4  # requests sent and discarded before the clock starts
    request_timeout: float = 300.0  # each request's gRPC deadline
    drain_timeout: float | None = None  # after the last send, the wait for requests in flight; None: their deadline
    # An emulated cluster's wall seconds per emulated second (see `loadgen.clock`): every duration above, the
    # schedule and every figure recorded are then in emulated seconds.
    dilation: float = 1.0

    def __post_init__(self) -> None:
        for name in ("duration", "request_timeout", "drain_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        check_dilation(self.dilation)

    def on_cluster(self, time_dilation: float) -> RunLimits:
        """These limits against a cluster that runs `time_dilation` wall seconds per emulated second (what its
        router reports, 0 or 1 on real devices): the run measures in its time."""
        return dataclasses.replace(self, dilation=max(time_dilation, 1.0))

    @property
    def drain_seconds(self) -> float:
        return self.request_timeout if self.drain_timeout is None else min(self.drain_timeout, self.request_timeout)

    def describe(self) -> str:
        """What the run will take at most, said before it starts."""
        text = (
            f"sends for up to {self.duration:g} s after {self.warmup} warm-up requests, then waits at most "
            f"{self.drain_seconds:g} s for requests in flight"
        )
        if self.dilation > 1:
            text += f" (emulated seconds; x {self.dilation:g} on the wall clock)"
        return text


class Api(Enum):
    GRPC = "grpc"  # pdsim's Router service; the target is host:port
    OPENAI = "openai"  # /v1/completions, streamed; the target is http://host:port[/v1]


class Client(Protocol):
    def request(self, planned: PlannedRequest) -> Any: ...

    async def send(self, request: Any, record: RequestRecord) -> RequestRecord: ...


ClientFactory = Callable[[Plan, RunClock], Client]  # (plan, the run's clock) -> client


async def fetch_model_info(router: str, timeout: float = 10.0, api: Api = Api.GRPC) -> pb.NodeInfo | ServedModel:
    """What the router serves: its model's name and context length (which bounds the plan)."""
    if api is Api.OPENAI:
        async with aiohttp.ClientSession() as session:
            return await fetch_served_model(session, base_url(router), timeout)
    async with insecure_channel(router) as channel:
        info: pb.NodeInfo = await pb_grpc.NodeStub(channel).GetInfo(pb.InfoRequest(), timeout=timeout)
        return info


@asynccontextmanager
async def _connect(router: str, api: Api, limits: RunLimits) -> AsyncIterator[ClientFactory]:
    if api is Api.GRPC:
        async with insecure_channel(router) as channel:
            stub = pb_grpc.RouterStub(channel)
            yield lambda plan, clock: LoadClient(stub, plan, clock, clock.wall(limits.request_timeout))
        return
    url = base_url(router)
    # No pool limit: an open loop must not queue its requests on the client side.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        model = (await fetch_served_model(session, url)).model_name
        yield lambda plan, clock: OpenAiClient(session, url, model, plan, clock, clock.wall(limits.request_timeout))


async def run_plan(
    router: str,
    plan: Plan,
    open_loop: bool,
    concurrency: int,
    limits: RunLimits,
    label: str = "",
    api: Api = Api.GRPC,
) -> list[RequestRecord]:
    """Open loop: each request at its planned time. Closed loop: `concurrency` requests in flight."""
    async with _connect(router, api, limits) as make_client:
        await _warm_up(make_client, plan, limits)
        clock = RunClock(time.perf_counter(), limits.dilation)
        client = make_client(plan, clock)
        due = [r for r in plan.requests if r.send_at is None or r.send_at <= limits.duration]
        progress = Progress(len(due), label)
        progress.note(limits.describe())
        if open_loop:
            records = await _open_loop(client, plan, limits, progress, clock)
        else:
            records = await _closed_loop(client, plan, concurrency, limits, progress, clock)
        progress.draw(final=True)
        return records


async def _warm_up(make_client: ClientFactory, plan: Plan, limits: RunLimits) -> None:
    client = make_client(plan, RunClock(time.perf_counter(), limits.dilation))
    warmups = plan.requests[: limits.warmup]
    results = await asyncio.gather(*(client.send(client.request(r), RequestRecord.for_planned(r)) for r in warmups))
    failed = [r for r in results if not r.ok]
    if failed:
        raise ConnectionError(f"warm-up request failed: {failed[0].code} {failed[0].error}")


async def _tracked(client: Client, request: Any, progress: Progress, record: RequestRecord) -> RequestRecord:
    progress.on_sent()
    try:
        await client.send(request, record)
    finally:  # a request cancelled at the end of the drain is a timeout: it counts as not ok
        progress.on_done(record.ok)
    return record


async def _open_loop(
    client: Client, plan: Plan, limits: RunLimits, progress: Progress, clock: RunClock
) -> list[RequestRecord]:
    tasks: list[asyncio.Task[RequestRecord]] = []
    records: list[RequestRecord] = []
    for planned in plan.requests:
        assert planned.send_at is not None
        if planned.send_at > limits.duration:
            break
        request = client.request(planned)  # before the send time, not after it
        delay = clock.wall_at(planned.send_at) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        record = RequestRecord.for_planned(planned)
        records.append(record)
        tasks.append(asyncio.create_task(_tracked(client, request, progress, record)))
    await _drain(tasks, clock.wall(limits.drain_seconds))
    return records


async def _closed_loop(
    client: Client, plan: Plan, concurrency: int, limits: RunLimits, progress: Progress, clock: RunClock
) -> list[RequestRecord]:
    queue = iter(plan.requests)
    records: list[RequestRecord] = []

    async def worker() -> None:
        for planned in queue:
            if clock.now() > limits.duration:
                return
            record = RequestRecord.for_planned(planned)
            records.append(record)
            await _tracked(client, client.request(planned), progress, record)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await _drain(workers, clock.wall(limits.duration + limits.drain_seconds))  # workers stop sending at `duration`
    return records


async def _drain(tasks: list[asyncio.Task[RequestRecord]] | list[asyncio.Task[None]], timeout: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()  # LoadClient records the request as a timeout
    if pending:
        await asyncio.wait(pending)
