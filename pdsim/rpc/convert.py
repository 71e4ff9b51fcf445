"""The one place that converts between protobuf messages and pdsim's dataclasses (servicers aside)."""

from __future__ import annotations

from pdsim.kv_codec import KvChunk, KvHeader
from pdsim.requests import DEFAULT_MAX_TOKENS, FinishReason, SamplingParams
from pdsim.rpc import pdsim_pb2 as pb

_FINISH_TO_PB = {None: pb.FINISH_REASON_UNSPECIFIED, FinishReason.STOP: pb.FINISH_REASON_STOP,
                 FinishReason.LENGTH: pb.FINISH_REASON_LENGTH}  # fmt: skip
_FINISH_FROM_PB = {v: k for k, v in _FINISH_TO_PB.items()}


def sampling_from_pb(msg: pb.SamplingParams, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> SamplingParams:
    return SamplingParams(
        temperature=msg.temperature,
        top_p=msg.top_p if msg.HasField("top_p") else 1.0,
        top_k=msg.top_k,
        seed=msg.seed if msg.HasField("seed") else None,
        max_tokens=msg.max_tokens if msg.HasField("max_tokens") else default_max_tokens,
        ignore_eos=msg.ignore_eos,
    )


def sampling_to_pb(params: SamplingParams) -> pb.SamplingParams:
    msg = pb.SamplingParams(
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        max_tokens=params.max_tokens,
        ignore_eos=params.ignore_eos,
    )
    if params.seed is not None:
        msg.seed = params.seed
    return msg


def finish_to_pb(reason: FinishReason | None) -> pb.FinishReason:
    return _FINISH_TO_PB[reason]


def finish_from_pb(value: pb.FinishReason) -> FinishReason | None:
    return _FINISH_FROM_PB[value]


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


def kv_chunk_to_pb(chunk: KvChunk) -> pb.KvMessage:
    return pb.KvMessage(
        chunk=pb.KvChunk(index=chunk.index, layer=chunk.layer, offset=chunk.offset, data=chunk.data, crc32=chunk.crc32)
    )


def kv_chunk_from_pb(msg: pb.KvChunk) -> KvChunk:
    return KvChunk(msg.index, msg.layer, msg.offset, msg.data, msg.crc32)
