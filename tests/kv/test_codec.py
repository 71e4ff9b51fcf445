"""The KV codec: chunks round-trip exactly, and every corruption is caught with the right error."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pdsim.core.errors import DataLoss, FailedPrecondition, InvalidRequest
from pdsim.core.kv_layout import KvLayout
from pdsim.engine.kv_store import SlotKvStore, staged_tensor
from pdsim.kv.codec import KvAssembler, KvChunk, check_header, encode_layer, make_header
from pdsim.kv.staging import KvStaging


def _filled_store(dtype: str, tokens: int) -> SlotKvStore:
    layout = KvLayout(num_layers=3, num_kv_heads=2, head_dim=8, dtype=dtype)
    store = SlotKvStore(layout, num_slots=2, max_tokens=64, device="cpu")
    generator = torch.Generator().manual_seed(0)
    for keys, values in zip(store.keys, store.values, strict=True):
        keys[1, :, :tokens] = torch.randn(keys[1, :, :tokens].shape, generator=generator).to(keys.dtype)
        values[1, :, :tokens] = torch.randn(values[1, :, :tokens].shape, generator=generator).to(values.dtype)
    return store


def _chunks(store: SlotKvStore, tokens: int, chunk_bytes: int) -> tuple[object, list[KvChunk]]:
    header = make_header("r1", "fp", store.layout, tokens, chunk_bytes)
    chunks = [
        chunk
        for layer in range(header.num_layers)
        for chunk in encode_layer(header, layer, store.host_segments(1, layer, tokens))
    ]
    return header, chunks


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_round_trip_is_exact(dtype: str) -> None:
    tokens = 37
    store = _filled_store(dtype, tokens)
    header, chunks = _chunks(store, tokens, chunk_bytes=100)  # many chunks per segment, a short last one
    assert len(chunks) == header.num_chunks  # type: ignore[attr-defined]
    staging = KvStaging(store.layout, capacity_tokens=64, lease_seconds=10)
    entry = staging.reserve("r1", tokens)
    assembler = KvAssembler(header, entry.buffer)  # type: ignore[arg-type]
    for chunk in chunks:
        assembler.add(chunk)
    assembler.finish()
    block = staged_tensor(entry)
    target = SlotKvStore(store.layout, 1, 64, "cpu")
    target.write_block(0, block)
    for layer in range(store.layout.num_layers):
        assert torch.equal(target.keys[layer][0, :, :tokens], store.keys[layer][1, :, :tokens])
        assert torch.equal(target.values[layer][0, :, :tokens], store.values[layer][1, :, :tokens])


def _assembler(chunk_bytes: int = 256) -> tuple[KvAssembler, list[KvChunk]]:
    store = _filled_store("float32", 20)
    header, chunks = _chunks(store, 20, chunk_bytes)
    return KvAssembler(header, memoryview(bytearray(header.total_bytes))), chunks  # type: ignore[attr-defined,arg-type]


def test_a_flipped_byte_fails_the_checksum() -> None:
    assembler, chunks = _assembler()
    bad = bytearray(chunks[1].data)
    bad[5] ^= 0x01
    assembler.add(chunks[0])
    with pytest.raises(DataLoss, match=r"chunk 1 .* failed its checksum"):
        assembler.add(dataclasses.replace(chunks[1], data=bytes(bad)))


def test_out_of_order_and_missing_chunks_are_refused() -> None:
    assembler, chunks = _assembler()
    with pytest.raises(InvalidRequest, match="chunk 1 arrived out of order: expected chunk 0"):
        assembler.add(chunks[1])
    assembler, chunks = _assembler()
    for chunk in chunks[:-1]:
        assembler.add(chunk)
    with pytest.raises(DataLoss, match=f"ended after {len(chunks) - 1} of {len(chunks)} chunks"):
        assembler.finish()


def test_header_from_another_model_is_refused() -> None:
    layout = KvLayout(2, 2, 8, "float32")
    header = make_header("r", "other-model", layout, 10)
    with pytest.raises(FailedPrecondition, match="computed by model 'other-model'"):
        check_header(header, "this-model", layout, max_context=64)
    with pytest.raises(FailedPrecondition, match="layout"):
        check_header(make_header("r", "m", dataclasses.replace(layout, dtype="bfloat16"), 10), "m", layout, 64)
    with pytest.raises(InvalidRequest, match="num_chunks is 99"):
        check_header(dataclasses.replace(make_header("r", "m", layout, 10), num_chunks=99), "m", layout, 64)
