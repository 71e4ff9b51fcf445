"""The hand-written KvMessage frames agree with the protobuf library in both directions."""

from __future__ import annotations

import zlib

import pytest

from pdsim.core.errors import InvalidRequest
from pdsim.core.kv_layout import KvLayout
from pdsim.kv.codec import KvChunk, KvHeader, make_header
from pdsim.kv.frames import decode_kv_frame, encode_kv_chunk_frame, encode_kv_header_frame
from pdsim.rpc import pdsim_pb2 as pb

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


def _chunk_message(**fields: object) -> bytes:
    return pb.KvMessage(chunk=pb.KvChunk(**fields)).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "frame",
    [
        # A chunk split over two occurrences of the submessage: protobuf merges them.
        _chunk_message(index=3, layer=1, offset=7) + _chunk_message(data=b"payload", crc32=42),
        # A later occurrence overrides earlier scalar fields.
        _chunk_message(index=1, data=b"old") + _chunk_message(index=9, data=b"new"),
        # The oneof: a header then a chunk is a chunk.
        pb.KvMessage(header=pb.KvHeader(request_id="r")).SerializeToString() + _chunk_message(index=4),
        # int32 fields keep only their low 32 bits: index 2**32 + 5 reads as 5.
        b"\x12\x06\x08" + bytes([0x85, 0x80, 0x80, 0x80, 0x10]),
    ],
)
def test_decoding_matches_protobuf_on_merged_and_odd_encodings(frame: bytes) -> None:
    expected = pb.KvMessage.FromString(frame)
    decoded = decode_kv_frame(frame)
    assert isinstance(decoded, KvChunk)
    c = expected.chunk
    assert (decoded.index, decoded.layer, decoded.offset, bytes(decoded.data), decoded.crc32) == (
        c.index, c.layer, c.offset, c.data, c.crc32,
    )  # fmt: skip


def test_a_header_split_in_two_merges() -> None:
    frame = (
        pb.KvMessage(header=pb.KvHeader(request_id="r", num_layers=4)).SerializeToString()
        + pb.KvMessage(header=pb.KvHeader(num_tokens=9, dtype="float16")).SerializeToString()
    )
    decoded = decode_kv_frame(frame)
    assert isinstance(decoded, KvHeader)
    assert (decoded.request_id, decoded.num_layers, decoded.num_tokens, decoded.dtype) == ("r", 4, 9, "float16")


@pytest.mark.parametrize("frame", [b"\x15\x01\x02", b"\x00\x01", b"\x13\x14"])
def test_truncated_fixed_fields_field_zero_and_groups_are_refused(frame: bytes) -> None:
    assert isinstance(decode_kv_frame(frame), InvalidRequest)
