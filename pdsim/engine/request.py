"""A request as the engine tracks it, and the events the engine emits for it.

Events go out through the request's `emit` callback, called on the engine thread; whoever submitted the
request decides how to hand them to its own world (the servicers hop onto their event loop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from pdsim.core.errors import PdsimError
from pdsim.core.requests import FinishReason, SamplingParams, TokenLogprobs
from pdsim.engine.step import StagedKv


class Phase(Enum):
    PREFILL = "prefill"
    DECODE = "decode"
    MIXED = "mixed"  # running decodes and prompt chunks in one forward


@dataclass(frozen=True, slots=True)
class TokenOutput:
    """One new token; `finish_reason` is set on the request's last one."""

    token: int
    finish_reason: FinishReason | None
    logprobs: TokenLogprobs | None = None  # when the request asked for them
    emitted_at: float = field(default_factory=time.monotonic)  # when the engine emitted it


@dataclass(frozen=True, slots=True)
class PrefillOutput:
    """A prefill node's result: the first token, and the slot holding the prompt's KV until released."""

    first_token: int
    finish_reason: FinishReason | None
    slot: int  # -1 when generation ended at the first token and the KV was freed at once
    num_tokens: int
    logprobs: TokenLogprobs | None = None  # the first token's, when the request asked for them
    emitted_at: float = field(default_factory=time.monotonic)  # when the engine emitted it


@dataclass(frozen=True, slots=True)
class Failure:
    error: PdsimError


EngineEvent = TokenOutput | PrefillOutput | Failure


@dataclass(eq=False, slots=True)
class Request:
    request_id: str
    params: SamplingParams
    seed: int
    emit: Callable[[EngineEvent], None]
    prompt_ids: Sequence[int] = ()  # empty on a decode node, which receives KV instead
    prompt_len: int = 0
    output_ids: list[int] = field(default_factory=list)
    num_cached: int = 0  # tokens whose KV is in the request's slot
    slot: int = -1
    deadline: float | None = None  # time.monotonic() after which the request is dropped
    queued_at: float = 0.0  # time.monotonic() when it was submitted to the engine
    started_at: float = 0.0  # time.monotonic() when it left the queue for its first step
    staged: StagedKv | None = None

    def __post_init__(self) -> None:
        if self.prompt_ids and not self.prompt_len:
            self.prompt_len = len(self.prompt_ids)


def finish_reason(request: Request, eos_token_ids: frozenset[int], max_context: int) -> FinishReason | None:
    """Why the request ends after its newest token, or None while it goes on."""
    last = request.output_ids[-1]
    if (not request.params.ignore_eos and last in eos_token_ids) or last in request.params.stop_token_ids:
        return FinishReason.STOP
    if len(request.output_ids) >= request.params.max_tokens:
        return FinishReason.LENGTH
    if request.prompt_len + len(request.output_ids) >= max_context:
        return FinishReason.LENGTH
    return None
