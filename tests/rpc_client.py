"""Small client helpers for tests: call the router and collect what it streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc


@dataclass
class Completion:
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: int = 0
    usage: pb.Usage | None = None


def sampling(max_tokens: int, **fields: object) -> pb.SamplingParams:
    return pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True, **fields)  # type: ignore[arg-type]


async def complete(stub: pb_grpc.RouterStub, request: pb.GenerateRequest) -> Completion:
    out = Completion()
    async for response in stub.Generate(request):
        out.token_ids += response.token_ids
        out.text += response.text
        if response.finish_reason:
            out.finish_reason, out.usage = response.finish_reason, response.usage
    return out
