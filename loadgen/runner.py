"""Run a plan against a router: warm up (not counted), send on schedule or in a closed loop, drain, record.

Every run is bounded: at most the plan's requests, none sent after `duration`, and in-flight requests are
given the drain time after the last send (by default their own deadline: no request can outlive it) before they
are cancelled and recorded as timeouts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from loadgen.client import LoadClient
from loadgen.progress import Progress
from loadgen.records import RequestRecord
from loadgen.workload import Plan
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel


@dataclass(frozen=True, slots=True)
class RunLimits:
    duration: float = 60.0  # no request is sent after this many seconds
    warmup: int = 4  # requests sent and discarded before the clock starts
    request_timeout: float = 300.0  # each request's gRPC deadline
    drain_timeout: float | None = None  # after the last send, the wait for requests in flight; None: their deadline

    def __post_init__(self) -> None:
        for name in ("duration", "request_timeout", "drain_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")

    @property
    def drain_seconds(self) -> float:
        return self.request_timeout if self.drain_timeout is None else min(self.drain_timeout, self.request_timeout)

    def describe(self) -> str:
        """What the run will take at most, said before it starts."""
        return (
            f"sends for up to {self.duration:g} s after {self.warmup} warm-up requests, then waits at most "
            f"{self.drain_seconds:g} s for requests in flight"
        )


async def fetch_model_info(router: str, timeout: float = 10.0) -> pb.NodeInfo:
    """What the router serves (its context length bounds the plan)."""
    async with insecure_channel(router) as channel:
        info: pb.NodeInfo = await pb_grpc.NodeStub(channel).GetInfo(pb.InfoRequest(), timeout=timeout)
        return info


async def run_plan(
    router: str, plan: Plan, open_loop: bool, concurrency: int, limits: RunLimits, label: str = ""
) -> list[RequestRecord]:
    """Open loop: each request at its planned time. Closed loop: `concurrency` requests in flight."""
    async with insecure_channel(router) as channel:
        stub = pb_grpc.RouterStub(channel)
        await _warm_up(stub, plan, limits)
        start = time.perf_counter()
        client = LoadClient(stub, plan, start, limits.request_timeout)
        due = [r for r in plan.requests if r.send_at is None or r.send_at <= limits.duration]
        progress = Progress(len(due), label)
        progress.note(limits.describe())
        if open_loop:
            records = await _open_loop(client, plan, limits, progress, start)
        else:
            records = await _closed_loop(client, plan, concurrency, limits, progress, start)
        progress.draw(final=True)
        return records


async def _warm_up(stub: pb_grpc.RouterStub, plan: Plan, limits: RunLimits) -> None:
    client = LoadClient(stub, plan, time.perf_counter(), limits.request_timeout)
    warmups = plan.requests[: limits.warmup]
    results = await asyncio.gather(*(client.send(client.request(r), RequestRecord.for_planned(r)) for r in warmups))
    failed = [r for r in results if not r.ok]
    if failed:
        raise ConnectionError(f"warm-up request failed: {failed[0].code} {failed[0].error}")


async def _tracked(
    client: LoadClient, request: pb.GenerateRequest, progress: Progress, record: RequestRecord
) -> RequestRecord:
    progress.on_sent()
    try:
        await client.send(request, record)
    finally:  # a request cancelled at the end of the drain is a timeout: it counts as not ok
        progress.on_done(record.ok)
    return record


async def _open_loop(
    client: LoadClient, plan: Plan, limits: RunLimits, progress: Progress, start: float
) -> list[RequestRecord]:
    tasks: list[asyncio.Task[RequestRecord]] = []
    records: list[RequestRecord] = []
    for planned in plan.requests:
        assert planned.send_at is not None
        if planned.send_at > limits.duration:
            break
        request = client.request(planned)  # before the send time, not after it
        delay = start + planned.send_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        record = RequestRecord.for_planned(planned)
        records.append(record)
        tasks.append(asyncio.create_task(_tracked(client, request, progress, record)))
    await _drain(tasks, limits.drain_seconds)
    return records


async def _closed_loop(
    client: LoadClient, plan: Plan, concurrency: int, limits: RunLimits, progress: Progress, start: float
) -> list[RequestRecord]:
    queue = iter(plan.requests)
    records: list[RequestRecord] = []

    async def worker() -> None:
        for planned in queue:
            if time.perf_counter() - start > limits.duration:
                return
            record = RequestRecord.for_planned(planned)
            records.append(record)
            await _tracked(client, client.request(planned), progress, record)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await _drain(workers, limits.duration + limits.drain_seconds)  # workers stop sending at `duration`
    return records


async def _drain(tasks: list[asyncio.Task[RequestRecord]] | list[asyncio.Task[None]], timeout: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()  # LoadClient records the request as a timeout
    if pending:
        await asyncio.wait(pending)
