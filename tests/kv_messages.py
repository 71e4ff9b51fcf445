"""A PushKv stream of random KV, built with the protobuf library, for tests that talk to a decode node."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from decode_node.service import DecodeNodeServer
from pdsim.kv.codec import KvChunk, encode_layer, make_header
from pdsim.kv.frames import kv_header_to_pb
from pdsim.rpc import pdsim_pb2 as pb


def kv_messages(
    node: DecodeNodeServer, request_id: str, tokens: int, mutate: Callable[[list[KvChunk]], list[KvChunk]] = list,
    fingerprint: str | None = None,
) -> Iterator[pb.KvMessage]:  # fmt: skip
    """A PushKv stream built with the protobuf library (the node decodes frames itself: this checks both agree)."""
    info = node.built.info
    header = make_header(request_id, fingerprint or info.fingerprint, info.layout, tokens, chunk_bytes=1000)
    segments = [memoryview(os.urandom(header.segment_bytes)) for _ in range(2 * header.num_kv_heads)]
    chunks = [c for layer in range(header.num_layers) for c in encode_layer(header, layer, segments)]
    yield kv_header_to_pb(header)
    for c in mutate(chunks):
        yield pb.KvMessage(
            chunk=pb.KvChunk(index=c.index, layer=c.layer, offset=c.offset, data=bytes(c.data), crc32=c.crc32)
        )
