"""The KV codec: a request's KV cache as a header and checksummed chunks, and the assembler that checks them.

Payload layout (what `KvHeader.layer_bytes` counts): for each layer, its keys then its values, each
`[kv_heads, tokens, head_dim]` in the header's dtype. That is 2 x kv_heads segments of `[tokens, head_dim]`
per layer; each segment is cut into chunks of at most `chunk_bytes`. A chunk never spans two segments, so a
sender can send straight from a KV store whose heads are not adjacent (no gathering copy), layer by layer.
`KvAssembler` writes every chunk into a buffer sized from the header (on a decode node, a range of its staging
arena: see `pdsim.kv.receive`), checking order, placement and crc32 as it goes. The codec imports neither the
wire format (`pdsim.kv.frames`) nor staging.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pdsim.core.errors import DataLoss, FailedPrecondition, InvalidRequest
from pdsim.core.kv_layout import KvLayout

MAX_CHUNK_BYTES = 4 * 1024 * 1024
DEFAULT_CHUNK_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KvHeader:
    request_id: str
    model_fingerprint: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    num_tokens: int
    dtype: str
    num_chunks: int
    chunk_bytes: int

    @property
    def layout(self) -> KvLayout:
        return KvLayout(self.num_layers, self.num_kv_heads, self.head_dim, self.dtype)

    @property
    def layer_bytes(self) -> int:
        return self.layout.layer_bytes(self.num_tokens)

    @property
    def total_bytes(self) -> int:
        return self.num_layers * self.layer_bytes

    @property
    def segment_bytes(self) -> int:
        """One head's keys (or values) of one layer: `[tokens, head_dim]`."""
        return self.num_tokens * self.head_dim * self.layout.element_bytes

    @property
    def chunks_per_segment(self) -> int:
        return -(-self.segment_bytes // self.chunk_bytes)

    @property
    def chunks_per_layer(self) -> int:
        return 2 * self.num_kv_heads * self.chunks_per_segment


@dataclass(frozen=True, slots=True)
class _ChunkGrid:
    """A header's chunk geometry as plain ints: each of `KvHeader`'s properties rebuilds its layout, too slow to
    repeat for every chunk of a transfer."""

    chunk_bytes: int
    segment_bytes: int
    chunks_per_segment: int
    chunks_per_layer: int
    layer_bytes: int

    @staticmethod
    def of(header: KvHeader) -> _ChunkGrid:
        h = header
        return _ChunkGrid(h.chunk_bytes, h.segment_bytes, h.chunks_per_segment, h.chunks_per_layer, h.layer_bytes)

    def place(self, index: int) -> tuple[int, int, int]:
        """Where chunk `index` goes: (layer, byte offset within the layer, length)."""
        layer, within = divmod(index, self.chunks_per_layer)
        segment, part = divmod(within, self.chunks_per_segment)
        start = part * self.chunk_bytes
        return layer, segment * self.segment_bytes + start, min(self.chunk_bytes, self.segment_bytes - start)


@dataclass(frozen=True, slots=True)
class KvChunk:
    index: int
    layer: int
    offset: int  # within the layer's payload
    data: bytes | memoryview  # a view into the sender's KV store or the received frame: never copied here
    crc32: int


def make_header(
    request_id: str,
    model_fingerprint: str,
    layout: KvLayout,
    num_tokens: int,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> KvHeader:
    if not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk_bytes must be in (0, {MAX_CHUNK_BYTES}], got {chunk_bytes}")
    header = KvHeader(
        request_id,
        model_fingerprint,
        layout.num_layers,
        layout.num_kv_heads,
        layout.head_dim,
        num_tokens,
        layout.dtype,
        num_chunks=0,
        chunk_bytes=chunk_bytes,
    )
    return dataclasses.replace(header, num_chunks=layout.num_layers * header.chunks_per_layer)


def encode_layer(header: KvHeader, layer: int, segments: Sequence[memoryview]) -> Iterator[KvChunk]:
    """Chunks of one layer: `segments` are its 2 x kv_heads `[tokens, head_dim]` blocks, keys first, as bytes."""
    if len(segments) != 2 * header.num_kv_heads or any(s.nbytes != header.segment_bytes for s in segments):
        raise ValueError(f"layer {layer} needs {2 * header.num_kv_heads} segments of {header.segment_bytes} bytes")
    index = layer * header.chunks_per_layer
    for number, segment in enumerate(segments):
        for start in range(0, header.segment_bytes, header.chunk_bytes):
            data = segment[start : start + header.chunk_bytes]
            yield KvChunk(index, layer, number * header.segment_bytes + start, data, zlib.crc32(data))
            index += 1


def check_header(header: KvHeader, model_fingerprint: str, layout: KvLayout, max_context: int) -> None:
    """Refuse KV this node cannot use, naming the mismatch."""
    if header.model_fingerprint != model_fingerprint:
        raise FailedPrecondition(
            f"KV for request {header.request_id!r} was computed by model {header.model_fingerprint!r}; "
            f"this node serves model {model_fingerprint!r}"
        )
    if header.layout != layout:
        raise FailedPrecondition(f"KV layout {header.layout} does not match this node's {layout}")
    if not 0 < header.num_tokens < max_context:
        raise InvalidRequest(f"KV num_tokens must be in [1, {max_context}), got {header.num_tokens}")
    if not 0 < header.chunk_bytes <= MAX_CHUNK_BYTES:
        raise InvalidRequest(f"chunk_bytes must be in (0, {MAX_CHUNK_BYTES}], got {header.chunk_bytes}")
    expected = header.num_layers * header.chunks_per_layer
    if header.num_chunks != expected:
        raise InvalidRequest(f"num_chunks is {header.num_chunks}; {expected} chunks carry this KV")
    if not header.request_id:
        raise InvalidRequest("KV header has an empty request_id")


class KvAssembler:
    """Checks each arriving chunk and writes it into `buffer` (`header.total_bytes` long)."""

    def __init__(self, header: KvHeader, buffer: memoryview) -> None:
        assert buffer.nbytes == header.total_bytes, (buffer.nbytes, header.total_bytes)
        self.header = header
        self.buffer = buffer
        self.received = 0
        self._grid = _ChunkGrid.of(header)

    def add(self, chunk: KvChunk) -> None:
        header = self.header
        if chunk.index != self.received:
            raise InvalidRequest(
                f"KV chunk {chunk.index} arrived out of order: expected chunk {self.received} of {header.num_chunks}"
            )
        if chunk.index >= header.num_chunks:
            raise InvalidRequest(f"KV chunk {chunk.index} is past the {header.num_chunks} the header announced")
        layer, offset, length = self._grid.place(chunk.index)
        size = memoryview(chunk.data).nbytes
        if (chunk.layer, chunk.offset, size) != (layer, offset, length):
            raise InvalidRequest(
                f"KV chunk {chunk.index} claims layer {chunk.layer} offset {chunk.offset} ({size} bytes); "
                f"expected layer {layer} offset {offset} ({length} bytes)"
            )
        actual = zlib.crc32(chunk.data)
        if actual != chunk.crc32:
            raise DataLoss(
                f"KV chunk {chunk.index} (layer {layer}, offset {offset}) failed its checksum: "
                f"crc32 {actual:#010x} != {chunk.crc32:#010x}"
            )
        start = layer * self._grid.layer_bytes + offset
        self.buffer[start : start + length] = chunk.data
        self.received += 1

    def finish(self) -> None:
        if self.received != self.header.num_chunks:
            raise DataLoss(
                f"KV stream for request {self.header.request_id!r} ended after {self.received} "
                f"of {self.header.num_chunks} chunks"
            )
