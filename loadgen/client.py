"""The async client: send one planned request to a router's Generate and time every streamed message."""

from __future__ import annotations

import asyncio

import grpc

from loadgen.clock import RunClock
from loadgen.records import RequestRecord
from loadgen.workload import Plan, PlannedRequest
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc


class LoadClient:
    def __init__(self, stub: pb_grpc.RouterStub, plan: Plan, clock: RunClock, request_timeout: float) -> None:
        """`request_timeout`: each request's deadline, in wall seconds."""
        self._stub = stub
        self._plan = plan
        self._clock = clock
        self._timeout = request_timeout

    def request(self, planned: PlannedRequest) -> pb.GenerateRequest:
        """The message to send; an open loop builds it before the send time (a long prompt takes a while)."""
        return pb.GenerateRequest(
            token_ids=pb.TokenIds(ids=self._plan.prompt(planned)),
            sampling=pb.SamplingParams(max_tokens=planned.output_tokens, ignore_eos=planned.ignore_eos),
            request_class=planned.request_class,
        )

    async def send(self, request: pb.GenerateRequest, record: RequestRecord) -> RequestRecord:
        """Send and stream into `record`. A cancelled send (the run's drain time ran out) is recorded as a
        timeout before the cancellation goes on."""
        record.sent = self._clock.now()
        try:
            async for response in self._stub.Generate(request, timeout=self._timeout):
                if response.token_ids:  # a message with only a finish reason or usage is no token arrival
                    record.chunk_times.append(self._clock.token_time(response.token_times))
                    record.chunk_tokens.append(len(response.token_ids))
                if response.HasField("timeline"):  # pdsim's router sends it with the last message
                    record.stages, record.nodes = dict(response.timeline.seconds), list(response.timeline.nodes)
        except grpc.aio.AioRpcError as error:
            record.status, record.code, record.error = "error", error.code().name, error.details() or ""
        except Exception as error:
            record.status, record.code, record.error = "error", type(error).__name__, str(error)
        except asyncio.CancelledError:
            record.status, record.error = "timeout", "still running when the run's drain time ended"
            record.ended = self._clock.now()
            raise
        record.ended = self._clock.now()
        return record
