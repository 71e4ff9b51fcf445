"""What a generation request asks for, and the checks every process applies to it.

Torch-free on purpose: the router validates requests with the same code as the nodes before any model is
involved, and it must not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from pdsim.core.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 16
# Below this a temperature samples the argmax anyway; dividing logits by it would overflow to inf and NaN.
GREEDY_TEMPERATURE = 1e-5
MAX_TEMPERATURE = 1000.0  # far past uniform sampling; also keeps the value finite in the float32 wire field
MAX_TOP_K = 2**31 - 1  # int32 on the wire
MAX_SEED = 2**64 - 1  # uint64 on the wire
MAX_STOP_TOKEN_IDS = 64  # bounds the per-step masking and the wire message


class FinishReason(Enum):
    STOP = "stop"  # the model produced an end-of-sequence token
    LENGTH = "length"  # max_tokens or the model's context was reached


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Per-request sampling; temperature 0 (or anything below `GREEDY_TEMPERATURE`) is greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    ignore_eos: bool = False
    min_p: float = 0.0  # drop tokens less likely than min_p x the likeliest one; 0 disables it
    min_tokens: int = 0  # EOS and stop_token_ids cannot be sampled before this many tokens
    stop_token_ids: tuple[int, ...] = ()  # generation stops (finish reason stop) after any of these

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """The facts about a model that decide whether a request can run on it."""

    max_context: int
    vocab_size: int


def validate_sampling(params: SamplingParams) -> None:
    """Raise `InvalidRequest` naming the first bad field."""
    if not math.isfinite(params.temperature) or params.temperature < 0:
        raise InvalidRequest(f"temperature must be >= 0, got {params.temperature}")
    if params.temperature > MAX_TEMPERATURE:
        raise InvalidRequest(f"temperature must be <= {MAX_TEMPERATURE:g}, got {params.temperature}")
    if not math.isfinite(params.top_p) or not 0.0 < params.top_p <= 1.0:
        raise InvalidRequest(f"top_p must be in (0, 1], got {params.top_p}")
    if not 0 <= params.top_k <= MAX_TOP_K:
        raise InvalidRequest(f"top_k must be in [0, {MAX_TOP_K}] (0 disables it), got {params.top_k}")
    if params.max_tokens <= 0:
        raise InvalidRequest(f"max_tokens must be > 0, got {params.max_tokens}")
    if not math.isfinite(params.min_p) or not 0.0 <= params.min_p <= 1.0:
        raise InvalidRequest(f"min_p must be in [0, 1], got {params.min_p}")
    if not 0 <= params.min_tokens <= params.max_tokens:
        raise InvalidRequest(f"min_tokens must be in [0, max_tokens={params.max_tokens}], got {params.min_tokens}")
    if len(params.stop_token_ids) > MAX_STOP_TOKEN_IDS:
        raise InvalidRequest(f"stop_token_ids holds {len(params.stop_token_ids)} ids; at most {MAX_STOP_TOKEN_IDS}")
    if params.seed is not None and not 0 <= params.seed <= MAX_SEED:
        raise InvalidRequest(f"seed must be in [0, 2**64), got {params.seed}")


def validate_request(prompt_ids: Sequence[int], params: SamplingParams, limits: ModelLimits) -> None:
    """Check a tokenized request against the model it will run on; raise `InvalidRequest` on the first fault."""
    if not prompt_ids:
        raise InvalidRequest("prompt is empty: at least one token is needed")
    validate_lengths(len(prompt_ids), params, limits)
    bad = next((t for t in prompt_ids if not 0 <= t < limits.vocab_size), None)
    if bad is not None:
        raise InvalidRequest(f"prompt token id {bad} is outside the vocabulary [0, {limits.vocab_size})")
    bad = next((t for t in params.stop_token_ids if not 0 <= t < limits.vocab_size), None)
    if bad is not None:
        raise InvalidRequest(f"stop_token_ids holds {bad}, outside the vocabulary [0, {limits.vocab_size})")


def validate_lengths(prompt_len: int, params: SamplingParams, limits: ModelLimits) -> None:
    """Check the sampling parameters, and that the prompt and max_tokens fit the model's context."""
    validate_sampling(params)
    if prompt_len >= limits.max_context:
        raise InvalidRequest(
            f"prompt has {prompt_len} tokens; the model's context is {limits.max_context} tokens "
            "and at least one must be left to generate"
        )
    if prompt_len + params.max_tokens > limits.max_context:
        raise InvalidRequest(
            f"max_tokens ({params.max_tokens}) plus the prompt ({prompt_len} tokens) exceeds the model's "
            f"context of {limits.max_context} tokens"
        )
