"""Bad input gets the right status and a message naming the bad value; the servers keep serving."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable

import grpc
import pytest

from pdsim.core.topology import Mode
from pdsim.kv.codec import KvChunk
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc import pdsim_pb2_grpc as pb_grpc
from pdsim.rpc.server import insecure_channel
from tests.cluster import cluster, node_config
from tests.kv_messages import kv_messages
from tests.rpc_client import complete, sampling
from tests.waiting import eventually

CONTEXT = 1024  # the tiny preset's


async def _expect(call: Awaitable[object], code: grpc.StatusCode, *fragments: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    for fragment in fragments:
        assert fragment in (caught.value.details() or ""), caught.value.details()


async def _drain(stream: grpc.aio.UnaryStreamCall) -> None:
    async for _ in stream:
        pass


BAD_REQUESTS = [
    (pb.GenerateRequest(text="", sampling=sampling(4)), "prompt is empty"),
    (pb.GenerateRequest(sampling=sampling(4)), "prompt is missing"),
    (
        pb.GenerateRequest(token_ids=pb.TokenIds(ids=[1] * CONTEXT), sampling=sampling(4)),
        f"prompt has {CONTEXT}",
    ),
    (pb.GenerateRequest(text="hi", sampling=sampling(0)), "max_tokens must be > 0, got 0"),
    (pb.GenerateRequest(text="hi", sampling=sampling(-5)), "got -5"),
    (pb.GenerateRequest(text="hi", sampling=sampling(CONTEXT)), f"max_tokens ({CONTEXT}) plus the prompt"),
    (
        pb.GenerateRequest(text="hi", sampling=sampling(4, temperature=-1.0)),
        "temperature must be >= 0, got -1.0",
    ),
    (pb.GenerateRequest(text="hi", sampling=sampling(4, top_p=0.0)), "top_p must be in (0, 1], got 0.0"),
    (pb.GenerateRequest(text="hi", sampling=sampling(4, top_p=1.5)), "got 1.5"),
    (pb.GenerateRequest(token_ids=pb.TokenIds(ids=[1, 5000]), sampling=sampling(4)), "token id 5000"),
    # 8 MB: refused by its size, before it is tokenized, with the limit the context sets (1023 tokens x 7 bytes).
    (pb.GenerateRequest(text="x" * 8_000_000, sampling=sampling(4)), "over the limit of 7161 bytes"),
]


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_router_and_nodes_refuse_bad_requests_and_keep_serving(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            for request, message in BAD_REQUESTS:
                await _expect(_drain(stub.Generate(request)), grpc.StatusCode.INVALID_ARGUMENT, message)
            # Text that is not UTF-8 (a surrogate's bytes), which only a client writing raw bytes can send.
            raw = channel.unary_stream(
                "/pdsim.v1.Router/Generate", request_serializer=bytes, response_deserializer=bytes
            )
            text = pb.GenerateRequest(text="AB", sampling=sampling(4)).SerializeToString().replace(b"AB", b"\xed\xa0")
            await _expect(_drain(raw(text)), grpc.StatusCode.INVALID_ARGUMENT, "text must be valid UTF-8")
            # The nodes check too, for clients that bypass the router.
            node = c.nodes[0]
            async with insecure_channel(node.address) as node_channel:
                bad = pb.NodeRequest(request_id="x", prompt_token_ids=[], sampling=sampling(4))
                if mode is Mode.COLOCATED:
                    call = pb_grpc.WorkerStub(node_channel).Generate(bad)
                else:
                    call = pb_grpc.PrefillStub(node_channel).Prefill(
                        pb.PrefillRequest(request=bad, kv_destinations=["a:1"])
                    )
                await _expect(_drain(call), grpc.StatusCode.INVALID_ARGUMENT, "prompt is empty")
            good = await complete(stub, pb.GenerateRequest(text="still serving", sampling=sampling(6)))
            assert len(good.token_ids) == 6

    asyncio.run(scenario())


# ---------------------------------------------------------------- the decode node's KV intake


def _flip_a_byte(chunks: list[KvChunk]) -> list[KvChunk]:
    data = bytearray(chunks[2].data)  # a copy: the original is a view of the payload
    data[10] ^= 0x40
    return [*chunks[:2], dataclasses.replace(chunks[2], data=bytes(data)), *chunks[3:]]


def test_decode_node_refuses_bad_kv_and_keeps_serving_others() -> None:
    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED) as c, insecure_channel(c.address) as channel:
            router = pb_grpc.RouterStub(channel)
            node = c.decode[0]
            async with insecure_channel(node.address) as node_channel:
                decode = pb_grpc.DecodeStub(node_channel)
                # Requests in flight on the same decode node while it refuses bad pushes.
                others = [
                    asyncio.create_task(complete(router, pb.GenerateRequest(text=f"other {i}", sampling=sampling(400))))
                    for i in range(3)
                ]
                await eventually(lambda: node.load().running == 3, what="three requests decoding")
                await _expect(
                    decode.PushKv(kv_messages(node, "flip", 30, _flip_a_byte)),
                    grpc.StatusCode.DATA_LOSS, "chunk 2", "checksum",
                )  # fmt: skip
                await _expect(
                    decode.PushKv(kv_messages(node, "order", 30, lambda cs: [cs[1], cs[0], *cs[2:]])),
                    grpc.StatusCode.INVALID_ARGUMENT, "chunk 1 arrived out of order",
                )  # fmt: skip
                await _expect(
                    decode.PushKv(kv_messages(node, "missing", 30, lambda cs: cs[:-2])),
                    grpc.StatusCode.DATA_LOSS, "ended after",
                )  # fmt: skip
                await _expect(
                    decode.PushKv(kv_messages(node, "alien", 30, fingerprint="0123456789abcdef")),
                    grpc.StatusCode.FAILED_PRECONDITION, "'0123456789abcdef'", node.built.info.fingerprint,
                )  # fmt: skip
                await _expect(
                    _drain(decode.Decode(pb.DecodeRequest(request_id="never-pushed", first_token=1))),
                    grpc.StatusCode.NOT_FOUND, "'never-pushed'",
                )  # fmt: skip
                assert node.load().running == 3, "the others finished before the bad pushes: nothing was tested"
                results = await asyncio.gather(*others)
                assert [len(r.token_ids) for r in results] == [400, 400, 400]
            await eventually(lambda: sum(n.load().kv_bytes_held for n in c.decode) == 0, what="decode KV freed")

    asyncio.run(scenario())


def test_unclaimed_kv_is_freed_when_its_lease_ends() -> None:
    config = node_config(kv_lease_seconds=0.3)

    async def scenario() -> None:
        async with cluster(Mode.DISAGGREGATED, config=config) as c:
            node = c.decode[0]
            async with insecure_channel(node.address) as node_channel:
                decode = pb_grpc.DecodeStub(node_channel)
                reply = await decode.PushKv(kv_messages(node, "orphan", 50))
                assert reply.lease_seconds == pytest.approx(0.3)
                assert node.load().kv_bytes_held == 50 * node.built.info.layout.bytes_per_token
                await eventually(lambda: node.load().kv_bytes_held == 0, what="the lease freed the KV")
                await _expect(
                    _drain(decode.Decode(pb.DecodeRequest(request_id="orphan", first_token=1, sampling=sampling(4)))),
                    grpc.StatusCode.NOT_FOUND, "lease expired",
                )  # fmt: skip

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", [Mode.COLOCATED, Mode.DISAGGREGATED])
def test_a_client_that_cancels_mid_stream_frees_its_kv(mode: Mode) -> None:
    async def scenario() -> None:
        async with cluster(mode, workers=1) as c, insecure_channel(c.address) as channel:
            stub = pb_grpc.RouterStub(channel)
            call = stub.Generate(pb.GenerateRequest(text="a long one", sampling=sampling(900)))
            received = 0
            async for _ in call:
                received += 1
                if received == 5:
                    break
            serving = c.workers[0] if mode is Mode.COLOCATED else c.decode[0]
            assert serving.load().running == 1 and serving.load().kv_bytes_held > 0
            call.cancel()
            await eventually(
                lambda: (serving.load().running, serving.load().kv_bytes_held) == (0, 0), what="cancel freed the KV"
            )
            assert serving.built.engine.steps < 200, "the node kept decoding after the client left"

    asyncio.run(scenario())
