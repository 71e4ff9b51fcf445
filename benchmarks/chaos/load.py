"""Steady load on the router's gRPC API, and how every request ended.

Each request ends one of four ways: `ok` (its stream closed with a finish reason), `error` (the router ended it
with a gRPC status: a clear error, counted by code), `cancelled` (its own client disconnected on purpose) or
`lost` (no terminal event within the request timeout, or a stream that closed without a finish reason). A
healthy cluster under faults loses none.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

import grpc

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


@dataclass
class Outcome:
    sent: float  # time.monotonic()
    kind: str = "lost"  # ok | error | cancelled | lost
    code: str = ""  # the gRPC status of an error
    detail: str = ""
    tokens: int = 0
    ended: float | None = None


@dataclass(frozen=True, slots=True)
class LoadShape:
    rate: float  # requests per second
    seconds: float  # how long to send
    max_tokens: int
    cancel_fraction: float
    request_timeout: float
    seed: int

    @property
    def max_requests(self) -> int:
        """The bound on the count: what the rate gives over the duration, with room for Poisson's spread."""
        return int(self.rate * self.seconds * 2) + 10


async def run_load(router: str, shape: LoadShape) -> list[Outcome]:
    """Send Poisson arrivals for `shape.seconds` (at most `shape.max_requests`) and wait for every one to end."""
    rng = random.Random(shape.seed)
    outcomes: list[Outcome] = []
    tasks: list[asyncio.Task[None]] = []
    async with grpc.aio.insecure_channel(router) as channel:
        stub = pb_grpc.RouterStub(channel)
        start = time.monotonic()
        next_at = start
        while len(outcomes) < shape.max_requests:
            next_at += rng.expovariate(shape.rate)
            if next_at - start > shape.seconds:
                break
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            outcome = Outcome(sent=time.monotonic())
            outcomes.append(outcome)
            cancel_after = rng.uniform(0.0, 1.0) if rng.random() < shape.cancel_fraction else None
            prompt = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 60)))
            request = pb.GenerateRequest(
                text=prompt, sampling=pb.SamplingParams(max_tokens=shape.max_tokens, ignore_eos=True)
            )
            tasks.append(asyncio.create_task(_one(stub, request, outcome, cancel_after, shape.request_timeout)))
        await asyncio.gather(*tasks)
    return outcomes


async def _one(
    stub: pb_grpc.RouterStub, request: pb.GenerateRequest, outcome: Outcome, cancel_after: float | None, timeout: float
) -> None:
    call = stub.Generate(request)
    try:
        async with asyncio.timeout(cancel_after if cancel_after is not None else timeout):
            async for response in call:
                outcome.tokens += len(response.token_ids)
                if response.finish_reason != pb.FINISH_REASON_UNSPECIFIED:
                    outcome.kind = "ok"
        if outcome.kind != "ok":
            outcome.detail = "the stream closed without a finish reason"
    except TimeoutError:
        call.cancel()
        if cancel_after is not None:
            outcome.kind = "cancelled"
        else:
            outcome.detail = f"no terminal event within {timeout:g} s"
    except grpc.aio.AioRpcError as error:
        outcome.kind, outcome.code, outcome.detail = "error", error.code().name, error.details() or ""
    outcome.ended = time.monotonic()


async def send_one(router: str, max_tokens: int = 4, timeout: float = 30.0) -> Outcome:
    """One request on a fresh channel (is the cluster serving?)."""
    async with grpc.aio.insecure_channel(router) as channel:
        outcome = Outcome(sent=time.monotonic())
        request = pb.GenerateRequest(text="hello", sampling=pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True))
        await _one(pb_grpc.RouterStub(channel), request, outcome, None, timeout)
    return outcome


async def send_giant(router: str, size: int) -> str:
    """Send a text prompt of `size` bytes; returns "CODE: message" (the router must refuse it before tokenizing)."""
    options = [("grpc.max_send_message_length", size + 4096)]
    async with grpc.aio.insecure_channel(router, options=options) as channel:
        request = pb.GenerateRequest(text="x" * size, sampling=pb.SamplingParams(max_tokens=4))
        try:
            async for _ in pb_grpc.RouterStub(channel).Generate(request, timeout=60):
                pass
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"
    return "OK: accepted"


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts by ending: ok, error, cancelled, lost, and error:<CODE> for each gRPC status seen."""
    counts: Counter[str] = Counter(o.kind for o in outcomes)
    counts.update(f"error:{o.code}" for o in outcomes if o.kind == "error")
    return {"sent": len(outcomes), **{k: counts.get(k, 0) for k in ("ok", "error", "cancelled", "lost")},
            **{k: v for k, v in sorted(counts.items()) if k.startswith("error:")}}  # fmt: skip
