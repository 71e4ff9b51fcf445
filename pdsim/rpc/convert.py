"""Conversion between protobuf messages and pdsim's request dataclasses (sampling, finish reasons).

The KV wire frames have their own home, `pdsim.kv.frames`."""

from __future__ import annotations

from pdsim.core.requests import DEFAULT_MAX_TOKENS, FinishReason, SamplingParams, TokenLogprobs
from pdsim.core.timeline import Timeline
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
        min_p=msg.min_p,
        min_tokens=msg.min_tokens,
        stop_token_ids=tuple(msg.stop_token_ids),
        logprobs=msg.logprobs if msg.HasField("logprobs") else None,
    )


def sampling_to_pb(params: SamplingParams) -> pb.SamplingParams:
    msg = pb.SamplingParams(
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        max_tokens=params.max_tokens,
        ignore_eos=params.ignore_eos,
        min_p=params.min_p,
        min_tokens=params.min_tokens,
        stop_token_ids=params.stop_token_ids,
    )
    if params.seed is not None:
        msg.seed = params.seed
    if params.logprobs is not None:
        msg.logprobs = params.logprobs
    return msg


def logprobs_to_pb(value: TokenLogprobs) -> pb.TokenLogprobs:
    return pb.TokenLogprobs(
        logprob=value.logprob, top_ids=[t for t, _ in value.top], top_logprobs=[v for _, v in value.top]
    )


def logprobs_from_pb(msg: pb.TokenLogprobs) -> TokenLogprobs:
    return TokenLogprobs(msg.logprob, tuple(zip(msg.top_ids, msg.top_logprobs, strict=True)))


def finish_to_pb(reason: FinishReason | None) -> pb.FinishReason:
    return _FINISH_TO_PB[reason]


def finish_from_pb(value: pb.FinishReason) -> FinishReason | None:
    return _FINISH_FROM_PB[value]


def timeline_to_pb(timeline: Timeline) -> pb.Timeline:
    return pb.Timeline(
        seconds=dict(timeline.seconds),
        nodes=list(timeline.nodes),
        kv_bytes=timeline.kv_bytes,
        kv_chunks=timeline.kv_chunks,
    )


def timeline_from_pb(msg: pb.Timeline) -> Timeline:
    return Timeline(dict(msg.seconds), tuple(msg.nodes), msg.kv_bytes, msg.kv_chunks)
