"""What a generation request asks for, and the checks every process applies to it.

Torch-free on purpose: the router validates requests with the same code as the nodes before any model is
involved, and it must not import torch.
"""

from __future__ import annotations

import math
import struct
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
MAX_LOGPROBS = 20  # alternatives per token a request may ask for (OpenAI's top_logprobs bound)


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
    # None: no logprobs (the sampler computes none); k: each token's logprob and its k likeliest alternatives
    logprobs: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE


@dataclass(frozen=True, slots=True)
class TokenLogprobs:
    """A sampled token's logprob and the `k` likeliest tokens with theirs, likeliest first (torch-free: the
    router carries it too)."""

    logprob: float
    top: tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """The facts about a model that decide whether a request can run on it."""

    max_context: int
    vocab_size: int


def as_float32(value: float) -> float:
    """`value` as the nodes hold it: the wire's float fields, and the sampler's tensors, are float32. Past
    float32's range it is an infinity (struct refuses to round it), below its smallest subnormal 0."""
    try:
        rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return rounded


def _float32_field(value: float) -> tuple[float, str]:
    """The value the checks see (float32, as the nodes do) and how a message shows it: both forms when
    rounding changed it, so a client sees why e.g. top_p=1e-50 is refused as 0."""
    rounded = as_float32(value)
    if rounded == value or math.isnan(value):
        return rounded, f"{value}"
    return rounded, f"{value} ({rounded} in float32, the precision the nodes sample in)"


def validate_sampling(params: SamplingParams) -> None:
    """Raise `InvalidRequest` naming the first bad field (every message begins with the field's name).

    The router and every node run this same check, on the float fields as the nodes hold them (float32): a value
    that only float32 turns bad (a top_p of 1e-50 is 0 there) is refused by the router, with the same message a
    node would give, rather than accepted by one and refused by the other.
    """
    temperature, shown = _float32_field(params.temperature)
    if math.isnan(temperature) or temperature < 0:
        raise InvalidRequest(f"temperature must be >= 0, got {shown}")
    if temperature > MAX_TEMPERATURE:
        raise InvalidRequest(f"temperature must be <= {MAX_TEMPERATURE:g}, got {shown}")
    top_p, shown = _float32_field(params.top_p)
    if not math.isfinite(top_p) or not 0.0 < top_p <= 1.0:
        raise InvalidRequest(f"top_p must be in (0, 1], got {shown}")
    if not 0 <= params.top_k <= MAX_TOP_K:
        raise InvalidRequest(f"top_k must be in [0, {MAX_TOP_K}] (0 disables it), got {params.top_k}")
    if params.max_tokens <= 0:
        raise InvalidRequest(f"max_tokens must be > 0, got {params.max_tokens}")
    min_p, shown = _float32_field(params.min_p)
    if not math.isfinite(min_p) or not 0.0 <= min_p <= 1.0:
        raise InvalidRequest(f"min_p must be in [0, 1], got {shown}")
    if not 0 <= params.min_tokens <= params.max_tokens:
        raise InvalidRequest(f"min_tokens must be in [0, max_tokens={params.max_tokens}], got {params.min_tokens}")
    if len(params.stop_token_ids) > MAX_STOP_TOKEN_IDS:
        raise InvalidRequest(f"stop_token_ids holds {len(params.stop_token_ids)} ids; at most {MAX_STOP_TOKEN_IDS}")
    if params.logprobs is not None and not 0 <= params.logprobs <= MAX_LOGPROBS:
        raise InvalidRequest(f"logprobs must be in [0, {MAX_LOGPROBS}], got {params.logprobs}")
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


def validate_text(name: str, text: str) -> None:
    """Refuse text that is not valid Unicode: JSON may carry a lone surrogate ("\\ud800"), which no tokenizer,
    UTF-8 encoder or metrics label accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        raise InvalidRequest(
            f"{name} is not valid Unicode: it holds a lone surrogate U+{code:04X} at character {error.start}"
        ) from None


def max_prompt_bytes(limits: ModelLimits, max_token_bytes: int) -> int:
    """The most UTF-8 bytes a text prompt can take and still leave a token of the context to generate, when one
    token of the model's tokenizer stands for at most `max_token_bytes` bytes of text."""
    return (limits.max_context - 1) * max_token_bytes


def validate_prompt_text(text: str, limits: ModelLimits, max_token_bytes: int) -> None:
    """Refuse, before it is tokenized, a text prompt that is not valid Unicode or that is longer than any prompt
    the context can hold (see `max_prompt_bytes`). At most one pass over the text in C, however long it is;
    tokenizing an 8 MB prompt took seconds."""
    limit = max_prompt_bytes(limits, max_token_bytes)
    # isascii() reads a flag CPython keeps on the string: an ASCII prompt of any length is measured without a pass.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))  # surrogates: refused below
    if size > limit:
        raise InvalidRequest(
            f"prompt is {size} bytes of UTF-8 text, over the limit of {limit} bytes: the model's context of "
            f"{limits.max_context} tokens holds no more text (its tokenizer's tokens stand for at most "
            f"{max_token_bytes} bytes each)"
        )
    validate_text("prompt", text)
