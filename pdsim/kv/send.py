"""A prefill node's side of PushKv: one request's KV, read from its KV store layer by layer, pushed as chunk
frames to the first decode node that takes it (the other side is `pdsim.kv.receive`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

import grpc

from pdsim.core.errors import DeadlineExceeded, FailedPrecondition, ResourceExhausted, Unavailable
from pdsim.engine.step import KvStore
from pdsim.kv.codec import KvHeader, encode_layer, make_header
from pdsim.kv.frames import PUSH_KV_METHOD, encode_kv_chunk_frame, encode_kv_header_frame
from pdsim.kv.link import SharedLink
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc.server import insecure_channel
from pdsim.rpc.status import error_from_rpc

# Failures of the destination (full, down, hung past the push's bound, unable to hold this KV, or broken:
# INTERNAL is also how grpc-python may deliver a refusal it raced with): try the next decode node. Anything
# else (a malformed or corrupted stream) would fail again elsewhere, so it fails the request.
_TRY_NEXT = {
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Delivery:
    destination: str
    bytes: int
    seconds: float
    chunks: int


class KvSender:
    def __init__(
        self,
        store: KvStore,
        model_fingerprint: str,
        chunk_bytes: int,
        push_timeout: float,
        link: SharedLink | None = None,
    ) -> None:
        """`push_timeout`: the longest one push may take, whatever the request's deadline (a hung decode node).
        `link`: an emulated store's pushes carry a stand-in, paced as the real cache would cross this link."""
        self._store = store
        self._link = link
        self._push_timeout = push_timeout
        self._fingerprint = model_fingerprint
        self._chunk_bytes = chunk_bytes
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def push(
        self, request_id: str, slot: int, num_tokens: int, destinations: Sequence[str], timeout: float | None
    ) -> Delivery:
        """Send to the first destination that accepts; raise if none does. Each push is bounded by the request's
        `timeout` (seconds left; None: none) and by the sender's own push timeout, whichever ends first."""
        header = make_header(request_id, self._fingerprint, self._store.wire_layout, num_tokens, self._chunk_bytes)
        refusals: list[tuple[str, grpc.aio.AioRpcError]] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        for destination in destinations:
            push = self._channel(destination).stream_unary(
                PUSH_KV_METHOD, request_serializer=None, response_deserializer=pb.PushKvReply.FromString
            )  # frames go out already serialized (see `encode_kv_chunk_frame`)
            started = time.perf_counter()
            left = self._push_timeout if deadline is None else min(self._push_timeout, deadline - time.monotonic())
            if left <= 0:
                raise DeadlineExceeded("the request's deadline passed before a decode node took its KV")
            try:
                frames = self._frames(header, slot) if self._link is None else self._paced(header, slot, self._link)
                await push(frames, timeout=left)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _TRY_NEXT:
                    raise error_from_rpc(error, f"decode node {destination} refused the KV") from error
                refusals.append((destination, error))
                continue
            nbytes = num_tokens * self._store.layout.bytes_per_token  # the cache's, not the stand-in's
            return Delivery(destination, nbytes, time.perf_counter() - started, header.num_chunks)
        reasons = "; ".join(f"{d}: {e.code().name} {e.details()}" for d, e in refusals)
        codes = {e.code() for _, e in refusals}
        if grpc.StatusCode.RESOURCE_EXHAUSTED in codes:
            raise ResourceExhausted(f"no decode node took the KV ({reasons})")
        if codes == {grpc.StatusCode.FAILED_PRECONDITION}:
            raise FailedPrecondition(f"no decode node can hold this KV ({reasons})")
        raise Unavailable(f"no decode node took the KV ({reasons})")

    def _frames(self, header: KvHeader, slot: int) -> Iterator[bytes]:
        yield encode_kv_header_frame(header)
        for layer in range(header.num_layers):
            segments = self._store.host_segments(slot, layer, header.num_tokens)
            for chunk in encode_layer(header, layer, segments):
                yield encode_kv_chunk_frame(chunk)

    async def _paced(self, header: KvHeader, slot: int, link: SharedLink) -> AsyncIterator[bytes]:
        """The stand-in's frames, each held back until its share of the real cache has crossed the link."""
        share = header.num_tokens * self._store.layout.bytes_per_token / max(header.num_chunks, 1)
        frames = self._frames(header, slot)
        yield next(frames)  # the header
        for frame in frames:
            await link.carry(share)
            yield frame

    def _channel(self, destination: str) -> grpc.aio.Channel:
        if destination not in self._channels:
            self._channels[destination] = insecure_channel(destination)
        return self._channels[destination]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
