"""The receiving side of PushKv without gRPC: wire frames fed straight to a `KvReceiver` land in staging byte for
byte, and every refusal is the pdsim error the servicer turns into a status code, with nothing left held."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from pdsim.core.errors import (
    Aborted,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidRequest,
    PdsimError,
    ResourceExhausted,
)
from pdsim.core.kv_layout import KvLayout
from pdsim.core.requests import ModelLimits
from pdsim.engine.config import EngineConfig
from pdsim.kv.codec import KvChunk, KvHeader, encode_layer, make_header
from pdsim.kv.frames import KvFrame, decode_kv_frame, encode_kv_chunk_frame, encode_kv_header_frame
from pdsim.kv.receive import KvReceiver, Receipt
from pdsim.kv.staging import KvStaging
from pdsim.models.info import ModelInfo

LAYOUT = KvLayout(num_layers=3, num_kv_heads=2, head_dim=8, dtype="float16")  # 192 bytes per token
FINGERPRINT = "this-model"
MAX_CONTEXT = 64


def _receiver(capacity_tokens: int = 100) -> KvReceiver:
    return KvReceiver(KvStaging(LAYOUT, capacity_tokens, lease_seconds=5), FINGERPRINT, MAX_CONTEXT)


@dataclasses.dataclass
class _Push:
    header: KvHeader
    payload: bytes  # what staging must hold afterwards: per layer, keys then values, head by head
    chunks: list[KvChunk]

    def frames(self) -> list[bytes]:
        return [encode_kv_header_frame(self.header), *(encode_kv_chunk_frame(c) for c in self.chunks)]


def _push(request_id: str, tokens: int, fingerprint: str = FINGERPRINT, chunk_bytes: int = 100) -> _Push:
    header = make_header(request_id, fingerprint, LAYOUT, tokens, chunk_bytes)
    layers = [[os.urandom(header.segment_bytes) for _ in range(2 * LAYOUT.num_kv_heads)] for _ in range(3)]
    chunks = [
        chunk
        for layer, segments in enumerate(layers)
        for chunk in encode_layer(header, layer, [memoryview(s) for s in segments])
    ]
    return _Push(header, b"".join(b"".join(segments) for segments in layers), chunks)


async def _stream(frames: Iterable[bytes]) -> AsyncIterator[KvFrame | InvalidRequest]:
    for frame in frames:  # decoded as the servicer's deserializer decodes them
        yield decode_kv_frame(frame)


def _receive(receiver: KvReceiver, frames: Iterable[bytes]) -> Receipt:
    return asyncio.run(receiver.receive(_stream(frames)))


def _refused(receiver: KvReceiver, frames: Iterable[bytes], error: type[PdsimError], match: str) -> None:
    with pytest.raises(error, match=match):
        _receive(receiver, frames)
    assert receiver.staging.held_bytes == 0 and len(receiver.staging) == 0  # nothing is kept


def test_frames_land_in_staging_byte_for_byte() -> None:
    receiver, push = _receiver(), _push("r1", 37)  # many chunks per segment, a short last one
    receipt = _receive(receiver, push.frames())
    assert receipt.bytes == push.header.total_bytes == 37 * LAYOUT.bytes_per_token
    assert receipt.seconds > 0
    assert bytes(receipt.entry.buffer) == push.payload
    assert receiver.staging.held_bytes == receipt.bytes
    assert receiver.staging.claim("r1") is receipt.entry  # committed: its lease started, a Decode may claim it


def test_a_flipped_byte_is_data_loss() -> None:
    push = _push("r1", 20)
    bad = bytearray(push.chunks[4].data)
    bad[0] ^= 0x01
    chunks = [*push.chunks[:4], dataclasses.replace(push.chunks[4], data=bytes(bad)), *push.chunks[5:]]
    frames = [encode_kv_header_frame(push.header), *(encode_kv_chunk_frame(c) for c in chunks)]
    _refused(_receiver(), frames, DataLoss, r"chunk 4 \(layer 0, offset \d+\) failed its checksum")


def test_a_stream_that_stops_early_is_data_loss() -> None:
    _refused(_receiver(), _push("r1", 20).frames()[:-1], DataLoss, "ended after")


def test_kv_from_another_model_or_layout_is_failed_precondition() -> None:
    _refused(_receiver(), _push("r1", 20, fingerprint="other-model").frames(), FailedPrecondition, "'other-model'")
    other_layout = make_header("r1", FINGERPRINT, dataclasses.replace(LAYOUT, dtype="float32"), 20)
    _refused(_receiver(), [encode_kv_header_frame(other_layout)], FailedPrecondition, "layout")


def test_a_full_arena_is_resource_exhausted_and_kv_that_never_fits_is_failed_precondition() -> None:
    receiver = _receiver(capacity_tokens=50)
    kept = _receive(receiver, _push("first", 40).frames())
    with pytest.raises(ResourceExhausted, match="no room for"):
        _receive(receiver, _push("second", 20).frames())
    assert receiver.staging.held_bytes == kept.bytes and len(receiver.staging) == 1  # the first is untouched
    kept.entry.release()
    _refused(receiver, _push("huge", 60).frames(), FailedPrecondition, "can never fit")


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([], "must start with a KV header"),
        ([b""], "must start with a KV header"),  # a message with neither part set
        ([b"\x12"], "malformed KvMessage"),
        (["header", b"\x12\x05\x08"], "malformed KvMessage"),
        (["header", "header"], "one header, then chunks only"),
        (["chunk"], "must start with a KV header"),
    ],
)
def test_malformed_streams_are_invalid_request(frames: list[bytes | str], match: str) -> None:
    push = _push("r1", 20)
    named = {"header": encode_kv_header_frame(push.header), "chunk": encode_kv_chunk_frame(push.chunks[0])}
    _refused(_receiver(), [named[f] if isinstance(f, str) else f for f in frames], InvalidRequest, match)


def test_out_of_order_chunks_are_invalid_request() -> None:
    push = _push("r1", 20)
    frames = push.frames()
    frames[1], frames[2] = frames[2], frames[1]
    _refused(_receiver(), frames, InvalidRequest, "chunk 1 arrived out of order: expected chunk 0")


def test_a_cancelled_push_keeps_nothing() -> None:
    receiver, push = _receiver(), _push("r1", 20)

    async def cancelled_midway() -> AsyncIterator[KvFrame | InvalidRequest]:
        async for frame in _stream(push.frames()[:3]):
            yield frame
        raise asyncio.CancelledError  # as the servicer sees a client that went away

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(receiver.receive(cancelled_midway()))
    assert receiver.staging.held_bytes == 0 and len(receiver.staging) == 0


def test_unclaimed_kv_is_freed_when_its_lease_ends() -> None:
    now = [0.0]
    staging = KvStaging(LAYOUT, 100, lease_seconds=5, clock=lambda: now[0])
    receiver = KvReceiver(staging, FINGERPRINT, MAX_CONTEXT)

    async def scenario() -> None:
        await receiver.receive(_stream(_push("r1", 20).frames()))
        expiring = asyncio.create_task(receiver.expire_leases(period=0.001))
        await asyncio.sleep(0.01)
        assert len(staging) == 1  # the lease has not ended
        now[0] = 5.0
        for _ in range(1000):
            if len(staging) == 0:
                break
            await asyncio.sleep(0.001)
        expiring.cancel()
        assert len(staging) == 0 and staging.held_bytes == 0

    asyncio.run(scenario())


def test_the_arena_is_sized_from_the_model_and_the_engine_config() -> None:
    info = ModelInfo("m", Path("."), FINGERPRINT, ModelLimits(MAX_CONTEXT, 100), frozenset(), LAYOUT)
    default = KvReceiver.for_model(info, EngineConfig(kv_lease_seconds=7))
    assert default.staging.capacity_bytes == 4 * MAX_CONTEXT * LAYOUT.bytes_per_token  # four full contexts
    assert default.staging.lease_seconds == 7
    sized = KvReceiver.for_model(info, EngineConfig(staging_tokens=10))
    assert sized.staging.capacity_bytes == 10 * LAYOUT.bytes_per_token
    _receive(sized, _push("r1", 10).frames()).entry.release()  # it checks against the model it was built for
    _refused(sized, _push("r2", 10, fingerprint="other").frames(), FailedPrecondition, "'other'")


def _stalling(frames: list[bytes]) -> AsyncIterator[KvFrame | InvalidRequest]:
    """The frames, then nothing ever again: a sender that hung mid-push."""

    async def stream() -> AsyncIterator[KvFrame | InvalidRequest]:
        async for frame in _stream(frames):
            yield frame
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return stream()


@pytest.mark.parametrize("sent", [1, 4], ids=["after-its-header", "mid-payload"])
def test_a_push_that_stalls_is_dropped_and_frees_its_space(sent: int) -> None:
    receiver = KvReceiver(KvStaging(LAYOUT, 100, lease_seconds=30), FINGERPRINT, MAX_CONTEXT, stall_seconds=0.2)
    frames = _push("r1", 20).frames()[:sent]

    async def scenario() -> None:
        receiving = asyncio.create_task(receiver.receive(_stalling(frames)))
        await asyncio.sleep(0.05)
        assert receiver.staging.held_bytes == 20 * LAYOUT.bytes_per_token  # reserved from the header on
        done, _ = await asyncio.wait([receiving], timeout=5)  # bounded: before the fix it waited forever
        assert done, "the stalled push was never dropped"
        with pytest.raises(DeadlineExceeded, match=r"sent nothing for 0\.2 s: dropped"):
            receiving.result()

    asyncio.run(scenario())
    assert receiver.staging.held_bytes == 0 and len(receiver.staging) == 0


def test_a_push_slower_than_its_lease_is_dropped_at_the_lease_end() -> None:
    """The lease starts when the push starts: a push trickling in, never stalling, still ends with it."""
    receiver = KvReceiver(KvStaging(LAYOUT, 100, lease_seconds=0.3), FINGERPRINT, MAX_CONTEXT, stall_seconds=5)

    async def trickle() -> AsyncIterator[KvFrame | InvalidRequest]:
        async for frame in _stream(_push("r1", 20).frames()):
            yield frame
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        with pytest.raises(DeadlineExceeded, match=r"did not complete within its lease of 0\.3 s"):
            await asyncio.wait_for(receiver.receive(trickle()), timeout=5)

    asyncio.run(scenario())
    assert receiver.staging.held_bytes == 0 and len(receiver.staging) == 0


def test_a_released_request_is_not_staged_whenever_its_push_arrives() -> None:
    receiver, early, midway = _receiver(), _push("early", 20), _push("midway", 20)
    receiver.staging.release_id("early")  # the router released it before its push arrived
    _refused(receiver, early.frames(), Aborted, "cancelled and its KV released")

    async def released_midway() -> AsyncIterator[KvFrame | InvalidRequest]:
        async for frame in _stream(midway.frames()[:3]):
            yield frame
        assert receiver.staging.release_id("midway")  # arriving: its receiver stops and frees it
        async for frame in _stream(midway.frames()[3:]):
            yield frame

    with pytest.raises(Aborted, match="cancelled while its KV arrived"):
        asyncio.run(receiver.receive(released_midway()))
    assert receiver.staging.held_bytes == 0 and len(receiver.staging) == 0
