"""The hand-written KvMessage frames agree with the protobuf library in both directions."""

from __future__ import annotations

import zlib

import pytest

from pdsim.errors import InvalidRequest
from pdsim.kv_codec import KvChunk, KvHeader, make_header
from pdsim.kv_layout import KvLayout
from pdsim.rpc import pdsim_pb2 as pb
from pdsim.rpc.convert import decode_kv_frame, encode_kv_chunk_frame, encode_kv_header_frame

DATA = bytes(range(256)) * 40


@pytest.mark.parametrize(
    "chunk",
    [
        KvChunk(0, 0, 0, DATA, zlib.crc32(DATA)),
        KvChunk(123456, 31, 2**33, DATA[:7], 0xFFFFFFFF),
        KvChunk(-1, -2, -3, b"", 0),  # negatives are 10-byte varints on the wire
    ],
)
def test_chunk_frames_round_trip_through_the_protobuf_library(chunk: KvChunk) -> None:
    parsed = pb.KvMessage.FromString(encode_kv_chunk_frame(chunk)).chunk
    assert (parsed.index, parsed.layer, parsed.offset, parsed.data, parsed.crc32) == (
        chunk.index, chunk.layer, chunk.offset, bytes(chunk.data), chunk.crc32,
    )  # fmt: skip
    library = pb.KvMessage(
        chunk=pb.KvChunk(
            index=chunk.index, layer=chunk.layer, offset=chunk.offset, data=bytes(chunk.data), crc32=chunk.crc32
        )
    ).SerializeToString()
    decoded = decode_kv_frame(library)
    assert isinstance(decoded, KvChunk)
    assert (decoded.index, decoded.layer, decoded.offset, bytes(decoded.data), decoded.crc32) == (
        chunk.index, chunk.layer, chunk.offset, bytes(chunk.data), chunk.crc32,
    )  # fmt: skip


def test_header_frames_and_unknown_fields() -> None:
    header = make_header("req-1", "abc", KvLayout(4, 2, 64, "bfloat16"), 300)
    assert decode_kv_frame(encode_kv_header_frame(header)) == header
    # An unknown varint field (15) and an unknown fixed32 field (16) are skipped, as protobuf does.
    frame = b"\x78\x05" + b"\x85\x01\x00\x00\x00\x00" + encode_kv_chunk_frame(KvChunk(1, 2, 3, b"xy", 9))
    decoded = decode_kv_frame(frame)
    assert isinstance(decoded, KvChunk) and bytes(decoded.data) == b"xy"
    assert decode_kv_frame(b"") is None
    assert isinstance(decode_kv_frame(pb.KvMessage(header=pb.KvHeader()).SerializeToString()), KvHeader)


@pytest.mark.parametrize(
    "frame", [b"\x12\x05\x08", b"\x12", b"\x0f", b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"]
)
def test_malformed_frames_become_invalid_request(frame: bytes) -> None:
    assert isinstance(decode_kv_frame(frame), InvalidRequest)
