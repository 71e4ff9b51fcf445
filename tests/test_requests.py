from __future__ import annotations

import pytest

from pdsim.core.errors import InvalidRequest
from pdsim.core.requests import (
    ModelLimits,
    SamplingParams,
    as_float32,
    max_prompt_bytes,
    validate_prompt_text,
    validate_request,
    validate_sampling,
    validate_text,
)

LIMITS = ModelLimits(max_context=64, vocab_size=100)


@pytest.mark.parametrize(
    ("prompt", "params", "message"),
    [
        ([], SamplingParams(), "prompt is empty"),
        ([1] * 64, SamplingParams(max_tokens=1), "prompt has 64 tokens"),
        ([1] * 10, SamplingParams(max_tokens=0), "max_tokens must be > 0, got 0"),
        ([1] * 10, SamplingParams(max_tokens=-3), "got -3"),
        ([1] * 10, SamplingParams(max_tokens=55), "max_tokens (55) plus the prompt (10 tokens)"),
        ([1] * 10, SamplingParams(temperature=-0.5), "temperature must be >= 0, got -0.5"),
        ([1] * 10, SamplingParams(top_p=0.0), "top_p must be in (0, 1], got 0.0"),
        ([1] * 10, SamplingParams(top_p=1.5), "got 1.5"),
        ([1] * 10, SamplingParams(top_k=-1), "top_k must be in [0, 2147483647]"),
        ([1, 100], SamplingParams(), "prompt token id 100 is outside the vocabulary"),
    ],
)
def test_bad_requests_name_the_bad_value(prompt: list[int], params: SamplingParams, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(prompt, params, LIMITS)
    assert message in str(caught.value)


def test_a_request_that_exactly_fills_the_context_is_accepted() -> None:
    validate_request([1] * 10, SamplingParams(max_tokens=54), LIMITS)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # float32 (the wire's and the sampler's) turns these into values the nodes refuse: the router must too.
        (SamplingParams(top_p=1e-50), "top_p must be in (0, 1], got 1e-50 (0.0 in float32"),
        (SamplingParams(temperature=1e300), "temperature must be <= 1000, got 1e+300 (inf in float32"),
        (SamplingParams(temperature=float("nan")), "temperature must be >= 0, got nan"),
        (SamplingParams(min_p=1.0000001), "min_p must be in [0, 1], got 1.0000001 (1.0000001192092896 in float32"),
    ],
)
def test_floats_are_checked_as_the_nodes_hold_them(params: SamplingParams, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_sampling(params)
    assert str(caught.value).startswith(message), caught.value


def test_values_that_float32_makes_valid_are_accepted_as_a_node_accepts_them() -> None:
    validate_sampling(SamplingParams(top_p=1.0000000001, min_p=1e-50, temperature=1e-50))
    assert as_float32(1e-50) == 0.0 and as_float32(0.3) != 0.3 and as_float32(-1e300) == float("-inf")


def test_a_text_prompt_is_bounded_in_bytes_before_it_is_tokenized() -> None:
    limit = max_prompt_bytes(LIMITS, max_token_bytes=7)
    assert limit == 63 * 7  # one token of the context is left to generate
    validate_prompt_text("é" * (limit // 2), LIMITS, 7)  # 2 bytes a character: just fits
    with pytest.raises(InvalidRequest) as caught:
        validate_prompt_text("é" * (limit // 2 + 1), LIMITS, 7)
    message = str(caught.value)
    assert message.startswith(f"prompt is {limit + 1} bytes of UTF-8 text, over the limit of {limit} bytes"), message
    assert "context of 64 tokens" in message and "at most 7 bytes each" in message


@pytest.mark.parametrize("text", ["\ud800", "ok \udfff", "a" * 10_000 + "\ud800"])
def test_a_lone_surrogate_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^prompt (is not valid Unicode: it holds a lone surrogate U\+D|is \d+)"):
        validate_prompt_text(text, LIMITS, 7)
    with pytest.raises(InvalidRequest, match=r"^messages\[0\]\.content is not valid Unicode: .* U\+D[8F]"):
        validate_text("messages[0].content", text)
