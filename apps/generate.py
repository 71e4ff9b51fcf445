"""`pdsim generate`: stream one completion from a router to the terminal."""

from __future__ import annotations

import argparse
import sys
import time

import grpc
import uvloop

from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel


def build_request(args: argparse.Namespace) -> pb.GenerateRequest:
    sampling = pb.SamplingParams(temperature=args.temperature, top_k=args.top_k, ignore_eos=args.ignore_eos)
    if args.max_tokens is not None:
        sampling.max_tokens = args.max_tokens
    if args.top_p is not None:
        sampling.top_p = args.top_p
    if args.seed is not None:
        sampling.seed = args.seed
    if args.token_ids:
        try:
            ids = [int(t) for t in args.prompt.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--token-ids expects comma-separated integers, got {args.prompt!r}") from None
        return pb.GenerateRequest(token_ids=pb.TokenIds(ids=ids), sampling=sampling)
    return pb.GenerateRequest(text=args.prompt, sampling=sampling)


async def generate(args: argparse.Namespace) -> int:
    request = build_request(args)
    async with insecure_channel(args.router) as channel:
        stub = pb_grpc.RouterStub(channel)
        sent = time.perf_counter()
        first_at: float | None = None
        try:
            async for response in stub.Generate(request, timeout=args.timeout):
                if first_at is None:
                    first_at = time.perf_counter()
                sys.stdout.write(response.text)
                sys.stdout.flush()
                if response.finish_reason:
                    usage, reason = response.usage, pb.FinishReason.Name(response.finish_reason)
        except grpc.aio.AioRpcError as error:
            print(f"\npdsim generate: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    total = time.perf_counter() - sent
    ttft = (first_at or sent) - sent
    finish = reason.removeprefix("FINISH_REASON_").lower()
    print(
        f"\n[{usage.completion_tokens} tokens, prompt {usage.prompt_tokens}, {finish}; "
        f"TTFT {ttft * 1000:.0f} ms, total {total:.2f} s]",
        file=sys.stderr,
    )
    return 0


def run_generate(args: argparse.Namespace) -> int:
    return uvloop.run(generate(args))
