"""PushKv's wire frames: a KV header or chunk to and from the protobuf encoding of `KvMessage`.

The one place that knows how the KV codec's header and chunks look on the wire; the codec itself is wire-free.
"""

from __future__ import annotations

from collections.abc import Iterator

from pdsim.core.errors import InvalidRequest
from pdsim.kv.codec import KvChunk, KvHeader
from pdsim.rpc import pdsim_pb2 as pb


def kv_header_to_pb(header: KvHeader) -> pb.KvMessage:
    return pb.KvMessage(
        header=pb.KvHeader(
            request_id=header.request_id,
            model_fingerprint=header.model_fingerprint,
            num_layers=header.num_layers,
            num_kv_heads=header.num_kv_heads,
            head_dim=header.head_dim,
            num_tokens=header.num_tokens,
            dtype=header.dtype,
            num_chunks=header.num_chunks,
            chunk_bytes=header.chunk_bytes,
        )
    )


def kv_header_from_pb(msg: pb.KvHeader) -> KvHeader:
    return KvHeader(
        msg.request_id,
        msg.model_fingerprint,
        msg.num_layers,
        msg.num_kv_heads,
        msg.head_dim,
        msg.num_tokens,
        msg.dtype,
        msg.num_chunks,
        msg.chunk_bytes,
    )


# ---------------------------------------------------------------- the KV data plane's fast path
#
# A KV chunk is megabytes of payload. Building a protobuf message copies it, serializing copies it again, and
# parsing and reading the field back copy it twice more; on a CPU each pass over a request's KV costs about
# as much as the network transfer itself. So PushKv frames are encoded and decoded here directly in the
# protobuf wire format of `KvMessage`: one copy to send (the frame), none to receive (views of the frame).
# Any protobuf client still interoperates: `decode_kv_frame` accepts every valid encoding, and the tests check
# both directions against the protobuf library.

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

# The fast path bypasses the generated stubs on both ends, so both register and call PushKv by these names.
DECODE_SERVICE = pb.DESCRIPTOR.services_by_name["Decode"].full_name
PUSH_KV_METHOD = f"/{DECODE_SERVICE}/PushKv"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints are 10-byte two's complement, as protobuf writes them
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(view: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(view) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = view[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(view: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) pairs: ints for varints, views for length-delimited fields; fixed-width fields are
    skipped (KvMessage has none). Groups, field number 0 and truncated fields are errors, as in protobuf."""
    pos = 0
    while pos < len(view):
        key, pos = _read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(view, pos)
            yield number, value
        elif wire == _LENGTH:
            length, pos = _read_varint(view, pos)
            if pos + length > len(view):
                raise ValueError("length-delimited field runs past the message")
            yield number, view[pos : pos + length]
            pos += length
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
            if pos > len(view):
                raise ValueError("truncated fixed-width field")
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF  # protobuf truncates an int32 varint to its low 32 bits
    return value - (1 << 32) if value >= 1 << 31 else value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def encode_kv_chunk_frame(chunk: KvChunk) -> bytes:
    """A serialized `KvMessage{chunk}`; the payload is copied once, into the frame."""
    data = memoryview(chunk.data)
    fields = b"".join(
        (
            b"\x08", _varint(chunk.index), b"\x10", _varint(chunk.layer), b"\x18", _varint(chunk.offset),
            b"\x28", _varint(chunk.crc32), b"\x22", _varint(data.nbytes),
        )
    )  # fmt: skip
    return b"".join((b"\x12", _varint(len(fields) + data.nbytes), fields, data))


def encode_kv_header_frame(header: KvHeader) -> bytes:
    return kv_header_to_pb(header).SerializeToString()


KvFrame = KvHeader | KvChunk | None  # None: a message with neither part set


def decode_kv_frame(frame: bytes) -> KvFrame | InvalidRequest:
    """A received `KvMessage`, its chunk data a view of `frame`. As protobuf does, repeated occurrences of the
    set oneof member merge, and setting the other member clears it. Malformed input is returned as an error for
    the receiver (`pdsim.kv.receive`) to raise: this runs as gRPC's deserializer, where an exception would
    surface as an opaque INTERNAL status."""
    try:
        which: int | None = None
        parts: list[memoryview] = []
        for number, value in _fields(memoryview(frame)):
            if number in (1, 2) and isinstance(value, memoryview):
                if number != which:
                    which, parts = number, []
                parts.append(value)
        if which == 1:
            return kv_header_from_pb(pb.KvHeader.FromString(b"".join(p.tobytes() for p in parts)))
        if which == 2:
            return _decode_chunk(parts)
        return None
    except Exception as error:
        return InvalidRequest(f"malformed KvMessage: {error}")


def _decode_chunk(parts: list[memoryview]) -> KvChunk:
    ints = {1: 0, 2: 0, 3: 0, 5: 0}
    data = memoryview(b"")
    for part in parts:
        for number, value in _fields(part):
            if isinstance(value, memoryview):
                if number == 4:
                    data = value
            elif number in ints:
                ints[number] = value
    return KvChunk(
        index=_int32(ints[1]), layer=_int32(ints[2]), offset=_int64(ints[3]), data=data, crc32=ints[5] & 0xFFFFFFFF
    )
